#!/usr/bin/env node
// The `bedrock-batch` command: the CLI as built by `npm run build` (plain JavaScript, no loader).
await import('../dist/cli/main.js');
