// Every scenario, by name.

import auth from "./auth.mjs";
import disconnect from "./disconnect.mjs";
import events from "./events.mjs";
import limits from "./limits.mjs";
import load from "./load.mjs";
import namespaces from "./namespaces.mjs";
import rooms from "./rooms.mjs";
import transports from "./transports.mjs";

export const scenarios = { ...auth, ...disconnect, ...events, ...limits, ...load, ...namespaces, ...rooms, ...transports };
import features from "./features.mjs";
Object.assign(scenarios, features);
