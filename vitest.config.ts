import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/support/closing-line-reporter.ts'],
    // This machine runs Node 20; the deployed functions run on nodejs22.x, so the SDK's notice is noise here.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    testTimeout: 30_000,
    // Both cores: the heavy files wait on servers and child processes as much as they compute, so with one
    // worker (the default on two cores) a core stays idle and npm test takes nearly twice as long.
    maxWorkers: 2,
  },
});
