// npm run api: the HTTP API only.
import { start } from './start.js';

await start(['api']);
