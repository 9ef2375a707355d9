// npm run generate: the route definitions -> openapi/openapi.json -> generated/, the client package
// (types, client source, dist/ built from them, package.json, README).
// CI regenerates and fails when a committed file changes, so the three never drift.
// `--check` writes nothing and exits 1 when a file on disk differs from what it would write.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import openapiTS, { astToString } from 'openapi-typescript';
import { pino } from 'pino';
import ts from 'typescript';
import { createApp, openApiDocument } from '../src/app.js';
import { parseEnv } from '../src/env.js';
import type { Guards } from '../src/lib/guards.js';
import type { CronJobService } from '../src/scheduler/service.js';
import { banner, buildOptions, clientSource, packageJson, readme, tsconfigJson } from './client-package.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const app = createApp({
  // The defaults: what the spec shows must not depend on the generating machine's environment.
  config: parseEnv({}),
  logger: pino({ level: 'silent' }),
  // The generator only reads the routes; no request is ever handled.
  service: {} as CronJobService,
  guards: {} as Guards,
  ready: async () => false,
});
const spec = openApiDocument(app);
const specText = `${JSON.stringify(spec, null, 2)}\n`;

const types = `${banner}${astToString(await openapiTS(JSON.parse(specText), { alphabetize: true, exportType: true, defaultNonNullable: false }))}`;
const service = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
const openapiFetchVersion = service.dependencies['openapi-fetch'];

/** The package sources, and dist/ compiled from them with the package's own settings. */
const sources = { 'generated/client.ts': clientSource, 'generated/schema.d.ts': types };
const dist = buildPackage(sources);

const files: Record<string, string> = {
  'openapi/openapi.json': specText,
  ...sources,
  ...dist,
  'generated/package.json': packageJson(spec.info.version, openapiFetchVersion, {
    license: service.license,
    repository: service.repository,
  }),
  'generated/tsconfig.json': tsconfigJson,
  'generated/README.md': readme(spec.info.version),
};
if (process.argv.includes('--check')) {
  const stale: string[] = [];
  for (const [path, text] of Object.entries(files)) {
    const current = await readFile(join(root, path), 'utf8').catch(() => undefined);
    if (current !== text) stale.push(path);
  }
  const extra = (await readdir(join(root, 'generated/dist')).catch(() => [] as string[]))
    .map((f) => `generated/dist/${f}`)
    .filter((f) => !(f in files));
  stale.push(...extra);
  if (stale.length) {
    process.stderr.write(
      `The contract drifted from the routes: ${stale.join(', ')}. Run \`npm run generate\` and commit the result.\n`,
    );
    process.exit(1);
  }
  process.stdout.write('contract files are current\n');
} else {
  // dist/ holds exactly what this build emits: nothing left over from a file that went away.
  await rm(join(root, 'generated/dist'), { recursive: true, force: true });
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  process.stdout.write(`wrote ${Object.keys(files).join(', ')}\n`);
}

/**
 * Compiles the client package in memory (nothing is read from generated/, so --check works on a
 * stale or missing folder) and returns dist/'s files. A type error, a Node-only API included,
 * stops the generator.
 */
function buildPackage(inputs: Record<string, string>): Record<string, string> {
  const converted = ts.convertCompilerOptionsFromJson(buildOptions, join(root, 'generated'));
  if (converted.errors.length) throw new Error(ts.flattenDiagnosticMessageText(converted.errors[0]!.messageText, '\n'));
  const options = { ...converted.options, outDir: join(root, 'generated/dist') };
  const memory = new Map(Object.entries(inputs).map(([path, text]) => [join(root, path), text]));
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile: read } = host;
  host.fileExists = (f) => memory.has(f) || fileExists(f);
  host.readFile = (f) => memory.get(f) ?? read(f);
  host.getSourceFile = (f, lang, ...rest) =>
    memory.has(f) ? ts.createSourceFile(f, memory.get(f)!, lang) : getSourceFile(f, lang, ...rest);
  const out: Record<string, string> = {};
  host.writeFile = (f, text) => (out[relative(root, f)] = text.endsWith('\n') ? text : `${text}\n`);
  const program = ts.createProgram([...memory.keys()], options, host);
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...program.emit().diagnostics];
  if (diagnostics.length) {
    throw new Error(
      `the client package does not compile:\n${ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' })}`,
    );
  }
  // tsc emits no copy of a .d.ts input; the built client.d.ts imports ./schema.js, so it goes along.
  out['generated/dist/schema.d.ts'] = inputs['generated/schema.d.ts']!;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}
