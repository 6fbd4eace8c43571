/**
 * `npm run build`: the package as it installs. The TypeScript compiled to JavaScript with type declarations
 * (dist/), the files the code reads at run time copied beside it, and each Lambda function bundled from the
 * same sources (dist/lambda/<name>/index.mjs), which the construct deploys.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { buildFunctionBundles } from '../infra/function-bundles.ts';

const SOURCE_DIRECTORIES = ['shared', 'functions', 'infra', 'local', 'cli'];
/** Read at run time, beside the code that reads them (JSON is emitted by the compiler itself). */
const RUNTIME_FILE = /\.java$/;

rmSync('dist', { recursive: true, force: true });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
  stdio: 'inherit',
});
for (const directory of SOURCE_DIRECTORIES) {
  for (const file of readdirSync(directory, { recursive: true, encoding: 'utf8' })) {
    if (RUNTIME_FILE.test(file)) cpSync(path.join(directory, file), path.join('dist', directory, file));
  }
}
await buildFunctionBundles('dist/lambda');
