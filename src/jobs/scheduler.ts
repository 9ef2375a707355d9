// npm run worker: the Agenda worker only, as in the design document.
import { start } from '../start.js';

await start(['worker']);
