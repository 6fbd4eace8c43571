/**
 * `npm run build`: the package as it installs. The TypeScript compiled to JavaScript with type declarations
 * (dist/), the files the code reads at run time copied beside it, and each Lambda function bundled from the
 * same sources (dist/lambda/<name>/index.mjs), which the construct deploys.
 *
 * The build is written beside dist/ and swapped in when it is whole: a command started meanwhile (or after
 * a build that was interrupted) runs the previous build instead of finding no dist/ at all.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { buildFunctionBundles } from '../infra/function-bundles.ts';

const SOURCE_DIRECTORIES = ['shared', 'functions', 'infra', 'local', 'cli'];
/** Read at run time, beside the code that reads them (JSON is emitted by the compiler itself). */
const RUNTIME_FILE = /\.java$/;
const DIST = 'dist';
/** Where a build is written, and where the build it replaces goes while the new one is swapped in. */
const NEXT = `${DIST}.next-${process.pid}`;
const PREVIOUS = `${DIST}.previous-${process.pid}`;

// What builds that were interrupted left behind.
for (const entry of readdirSync('.')) {
  if (/^dist\.(next|previous)-\d+$/.test(entry)) rmSync(entry, { recursive: true, force: true });
}
try {
  execFileSync(
    process.execPath,
    ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', NEXT],
    { stdio: 'inherit' },
  );
  for (const directory of SOURCE_DIRECTORIES) {
    for (const file of readdirSync(directory, { recursive: true, encoding: 'utf8' })) {
      if (RUNTIME_FILE.test(file)) cpSync(path.join(directory, file), path.join(NEXT, directory, file));
    }
  }
  await buildFunctionBundles(path.join(NEXT, 'lambda'));
} catch (error) {
  rmSync(NEXT, { recursive: true, force: true });
  throw error;
}
if (existsSync(DIST)) renameSync(DIST, PREVIOUS);
renameSync(NEXT, DIST);
rmSync(PREVIOUS, { recursive: true, force: true });
