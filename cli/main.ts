import { runCommandLine } from './app.ts';
import { terminal } from './terminal.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await runCommandLine(process.argv.slice(2), terminal());
// The AWS SDK keeps sockets alive; the command is done.
process.exit(process.exitCode);
