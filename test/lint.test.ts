import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/temp.js';

const run = promisify(execFile);

/** `npm run lint` must fail on what the codebase keeps out; these check that its rules do. */
describe('lint rules', () => {
  const eslint = new ESLint({ cwd: ROOT });
  const rulesHit = async (code: string) =>
    (await eslint.lintText(code, { filePath: join(ROOT, 'src', 'probe.ts') }))[0]!.messages.map((m) => m.ruleId);

  it('refuses an unused variable, a shadowed name and a function of five positional parameters', async () => {
    expect(
      await rulesHit(
        'export function f(a: number, b: number, c: number, d: number, e: number) { return a + b + c + d + e; }\n',
      ),
    ).toContain('max-params');
    expect(await rulesHit('export function f() { const unused = 1; return 2; }\n')).toContain(
      '@typescript-eslint/no-unused-vars',
    );
    expect(await rulesHit('const x = 1;\nexport function f(x: number) { return x; }\nexport const y = x;\n')).toContain(
      '@typescript-eslint/no-shadow',
    );
    expect(
      await rulesHit('export function f(a: number, b: number, c: number, d: number) { return a + b + c + d; }\n'),
    ).toEqual([]);
  });

  it('refuses an import against the flow: the library importing a job, a worker or a command', async () => {
    const hits = async (file: string, code: string) =>
      (await eslint.lintText(code, { filePath: join(ROOT, file) }))[0]!.messages.map((m) => m.ruleId);
    const restricted = 'no-restricted-imports';
    expect(await hits('src/probe.ts', "export { main } from './cli/main.js';\n")).toContain(restricted);
    expect(await hits('src/ops/probe.ts', "export { startWorker } from '../../workers/runtime.js';\n")).toContain(
      restricted,
    );
    expect(await hits('src/probe.ts', "export { handleError } from '../jobs/errors.js';\n")).toContain(restricted);
    expect(await hits('jobs/probe.ts', "export { startWorker } from '../workers/runtime.js';\n")).toContain(restricted);
    expect(await hits('workers/probe.ts', "export { handleError } from '../jobs/errors.js';\n")).toEqual([]);
    expect(await hits('src/cli/probe.ts', "export { startWorker } from '../../workers/runtime.js';\n")).toEqual([]);
  });

  it('refuses an export that nothing but tests use', async () => {
    const tmp = await tempDir('nightshift-knip-');
    try {
      await mkdir(join(tmp.dir, 'src'));
      await mkdir(join(tmp.dir, 'test'));
      await writeFile(join(tmp.dir, 'package.json'), JSON.stringify({ name: 'probe', type: 'module' }));
      // The same shape as the project's knip.json: production entries marked with `!`.
      await writeFile(
        join(tmp.dir, 'knip.json'),
        JSON.stringify({ entry: ['src/main.ts!', 'test/**/*.test.ts'], project: ['src/**/*.ts!', 'test/**/*.ts'] }),
      );
      await writeFile(join(tmp.dir, 'src', 'main.ts'), "import { used } from './lib.js';\nconsole.log(used());\n");
      await writeFile(
        join(tmp.dir, 'src', 'lib.ts'),
        'export function used() { return 1; }\nexport function onlyTests() { return 2; }\n',
      );
      await writeFile(
        join(tmp.dir, 'test', 'lib.test.ts'),
        "import { onlyTests } from '../src/lib.js';\nonlyTests();\n",
      );
      const knip = join(ROOT, 'node_modules', 'knip', 'bin', 'knip.js');
      const r = await run(process.execPath, [knip, '--production', '--directory', tmp.dir]).then(
        (x) => ({ code: 0, out: x.stdout }),
        (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
      );
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/onlyTests/);
    } finally {
      await tmp.cleanup();
    }
  });
});
