// npm start: API and worker in one process, with the local database when MONGODB_URI is unset.
import { start } from './start.js';

await start(['api', 'worker']);
