import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as esbuild from 'esbuild';

/** The pipeline's Lambda functions: functions/<name>/index.ts is each one's entry point. */
export const FUNCTION_NAMES = [
  'enqueue',
  'worker',
  'finalizer',
  'sweeper',
  'batch',
  'message-batches',
] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

/** The bundle's file and export, as the template's handler names them (`index.handler`). */
export const BUNDLE_FILE = 'index.mjs';
export const BUNDLE_HANDLER = 'index.handler';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Running from this repository's TypeScript (tests, `cdk synth` here), not from the built package. */
const fromSource = import.meta.url.endsWith('.ts');

/**
 * How every function is bundled: one minified ESM file for Node.js 22 with its source map, the AWS SDK
 * included at the versions the tests ran with (not the runtime's), class names kept so a logged error still
 * says ConfigurationError, and `require` provided for the CommonJS packages inside.
 */
export function bundleOptions(name: FunctionName, outdir: string): esbuild.BuildOptions {
  return {
    entryPoints: [path.join(here, '..', 'functions', name, 'index.ts')],
    outfile: path.join(outdir, name, BUNDLE_FILE),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    sourcemap: true,
    minify: true,
    keepNames: true,
    mainFields: ['module', 'main'],
    logLevel: 'warning',
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
  };
}

/** Bundles every function, from this repository's sources, into `outdir/<name>/index.mjs` (the package build). */
export async function buildFunctionBundles(outdir: string): Promise<void> {
  const { build } = await import('esbuild');
  await Promise.all(FUNCTION_NAMES.map((name) => build(bundleOptions(name, outdir))));
}

const builtFromSource = new Map<FunctionName, string>();

/**
 * The directory holding a function's bundle, and a hash of its code. The built package carries its bundles
 * (built from the same sources by `npm run build`, the artifact its tests ran); from this repository's
 * sources they are bundled once per process, so a synth always deploys the code as it stands. The hash is
 * the code's alone: a source map's paths do not change what is deployed.
 */
export function functionBundle(name: FunctionName): { directory: string; codeHash: string } {
  const directory = fromSource ? bundledFromSource(name) : path.join(here, '..', 'lambda', name);
  const file = path.join(directory, BUNDLE_FILE);
  if (!existsSync(file))
    throw new Error(`The ${name} function's bundle is missing at ${file}: run npm run build.`);
  return { directory, codeHash: createHash('sha256').update(readFileSync(file)).digest('hex') };
}

function bundledFromSource(name: FunctionName): string {
  let outdir = builtFromSource.get(name);
  if (outdir === undefined) {
    const created = mkdtempSync(path.join(tmpdir(), 'bedrock-batch-bundle-'));
    // The synth copies the bundle into its cloud assembly: the build is not needed past this process.
    process.once('exit', () => rmSync(created, { recursive: true, force: true }));
    outdir = created;
    // A construct is built synchronously; esbuild is a development dependency, loaded only here.
    const { buildSync } = createRequire(import.meta.url)('esbuild') as typeof esbuild;
    buildSync(bundleOptions(name, outdir));
    builtFromSource.set(name, outdir);
  }
  return path.join(outdir, name);
}
