import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** Every .ts file under a folder. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

// Biome wraps code at 120 columns but never splits a string or a comment; this keeps those short
// too. A regular expression is the one thing allowed longer: split, it would be harder to read.
const isRegex = (line: string) => line.includes('(?:') || /^\s*\/\^/.test(line);

describe('readable lines', () => {
  it('no line of src/ is over 120 characters, regular expressions aside', () => {
    const long = sources('src').flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((line, i) => (line.length > 120 && !isRegex(line) ? [`${file}:${i + 1} (${line.length})`] : [])),
    );
    expect(long).toEqual([]);
  });
});
