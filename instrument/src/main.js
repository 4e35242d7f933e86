// main.js: install the hooks and the API object the daemon calls.

rebind();
guard(hookModuleLoading);
guard(hookRegistrations);
guard(hookReleasedCalls);
guard(trapGoGlobal);

function snapshot() {
  coarseNow = $now();
  // A class defined after a late injection (or behind a foreign accessor) is patched on the
  // next poll at the latest; so is a binding that appeared after the events it should carry.
  guard(() => patchGoClass(globalThis.Go));
  if (bindingFn === null) {
    rebind();
  }
  const instances = [];
  for (const rec of records) {
    const s = guard(() => rec.snapshot());
    if (s !== undefined) {
      instances.push(s);
    }
  }
  return {
    v: SHIM_VERSION,
    doc: DOC_ID,
    instances: instances,
    dropped: instancesDropped,
    missing: Array.from(missingHooks),
    errors: shimErrors,
    modules: { rewritten: modulesRewritten, inPlace: modulesRewrittenInPlace, refused: modulesRefused, warm: warmUpDone },
    events: eventsSent,
    eventsFailed: eventsFailed,
    bound: bindingFn !== null,
    pending: pending.length,
  };
}

// The daemon finds idle instances of a running page with Runtime.queryObjects(Go.prototype) and
// hands them over here: they are recorded (as "late") without waiting for a callback.
function adopt(list) {
  let count = 0;
  guard(() => {
    for (let i = 0; i < list.length && i < MAX_INSTANCES; i++) {
      const go = list[i];
      if (go !== null && typeof go === "object") {
        recordOf(go);
        count++;
      }
    }
  });
  return count;
}

// The page is going away: push the final counters, which the next poll would never see.
// Chromium 156 delivers binding calls made in `beforeunload` but not those made in `pagehide`
// (the binding is already cut off); both are listened to, a second flush changes nothing.
guard(() => {
  if (typeof addEventListener === "function") {
    const flush = () => {
      if (records.length > 0) {
        emit("snapshot", { snapshot: snapshot() });
      }
    };
    addEventListener("beforeunload", flush);
    addEventListener("pagehide", flush);
  }
});

$defineProperty(globalThis, SHIM_KEY, {
  value: Object.freeze({ version: SHIM_VERSION, doc: DOC_ID, snapshot, adopt, rebind }),
  enumerable: false,
  configurable: false,
  writable: false,
});
