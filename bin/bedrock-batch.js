#!/usr/bin/env node
// The `bedrock-batch` command: the CLI is TypeScript, run through tsx's loader.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
