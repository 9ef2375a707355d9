import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { Middleware } from 'openapi-fetch';

/**
 * Checks responses against the committed openapi/openapi.json itself (not the zod schemas it
 * came from), so a response the spec does not describe fails the test that received it.
 */
const spec = JSON.parse(readFileSync(new URL('../../openapi/openapi.json', import.meta.url), 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema(spec, 'spec');

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

export class ContractViolation extends Error {}

/** Validates one response body; throws a ContractViolation naming the operation and the errors. */
export function assertMatchesSpec(
  path: string,
  method: string,
  status: number,
  contentType: string | null,
  body: unknown,
): void {
  const operation = spec.paths?.[path]?.[method.toLowerCase()];
  if (!operation) throw new ContractViolation(`${method} ${path} is not in the spec`);
  const response = operation.responses?.[String(status)];
  if (!response) throw new ContractViolation(`${method} ${path} answered ${status}, which the spec does not document`);
  if (!response.content) {
    if (body !== undefined && body !== '')
      throw new ContractViolation(`${method} ${path} ${status} has a body the spec does not document`);
    return;
  }
  const mediaType = (contentType ?? '').split(';')[0]!.trim();
  if (!response.content[mediaType]) {
    throw new ContractViolation(
      `${method} ${path} ${status} answered ${mediaType}; the spec has ${Object.keys(response.content).join(', ')}`,
    );
  }
  const ref = `spec#/${pointer('paths', path, method.toLowerCase(), 'responses', String(status), 'content', mediaType, 'schema')}`;
  const validate = ajv.getSchema(ref);
  if (!validate) throw new ContractViolation(`no schema at ${ref}`);
  if (!validate(body)) {
    throw new ContractViolation(
      `${method} ${path} ${status} does not match the spec: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`,
    );
  }
}

/** openapi-fetch middleware: every response the generated client receives is checked. */
export const contractCheck: Middleware = {
  async onResponse({ request, response, schemaPath }) {
    const text = await response.clone().text();
    const body = text === '' ? undefined : JSON.parse(text);
    assertMatchesSpec(schemaPath, request.method, response.status, response.headers.get('Content-Type'), body);
    return response;
  },
};

/** The names of the headers the spec documents for this answer (an undocumented status throws). */
export function documentedHeaders(path: string, method: string, status: number): string[] {
  const response = spec.paths?.[path]?.[method.toLowerCase()]?.responses?.[String(status)];
  if (!response) throw new ContractViolation(`${method} ${path} answered ${status}, which the spec does not document`);
  return Object.keys(response.headers ?? {});
}
