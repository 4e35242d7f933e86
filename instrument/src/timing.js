// timing.js: how long each JS->Go callback keeps the page's event loop in Go.
//
// Priced in a Chromium page (bench/resume_hook.py, docs/performance.md): performance.now() costs
// about 0.27 us and Date.now() 0.035 us, against a round trip of about 9.6 us; the rest of the
// round-trip hook costs about 0.04 us. Any clock read on every call would spend most of the 1 %
// budget of issue 8, so timing is sampled: every Nth call of an instance (CONFIG.timingSample,
// default 16; 1 times every call) is timed with performance.now() and counts N times, in the
// duration histogram and, when it took longer than CONFIG.longCallMs, in the long-call counter.
// The sampling is systematic (calls N, 2N, 3N, ... of the instance), not random, so the
// histogram's count is exactly N times the number of timed calls. timingSample 0 turns timing
// off. Pages that are not cross-origin isolated get a coarsened performance.now() (100 us steps
// in Chromium), so the smallest buckets are only as good as the page's clock.

const DURATION_BOUNDS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
  2.5, 5, 10,
]; // seconds; the last bucket (+Inf) is implied
const LONG_CALL_MS = Number(CONFIG.longCallMs) > 0 ? Number(CONFIG.longCallMs) : 50;
const TIMING_SAMPLE = clampInt(CONFIG.timingSample, 0, 1 << 20, 16);
let performanceNow = null; // resolved on the first timed call (see webGlobal in prelude.js)

function $performanceNow() {
  if (performanceNow === null) {
    const perf = webGlobal("performance");
    performanceNow = perf !== null && typeof perf === "object" && typeof perf.now === "function"
      ? perf.now.bind(perf)
      : $now;
  }
  return performanceNow();
}

class CallTiming {
  constructor() {
    this.buckets = new Array(DURATION_BOUNDS.length + 1).fill(0); // per bucket, not cumulative
    this.sum = 0;
    this.long = 0;
    this.countdown = TIMING_SAMPLE; // calls until the next timed one
  }

  // Around one call into Go: `const t = timing.begin(); try { ... } finally { timing.end(t); }`.
  // The token is the performance.now() of the start of a timed call, -1 for the others (nested
  // calls keep their own).
  begin() {
    if (TIMING_SAMPLE === 0 || --this.countdown !== 0) {
      return -1;
    }
    this.countdown = TIMING_SAMPLE;
    return $performanceNow();
  }

  end(token) {
    if (token < 0) {
      return;
    }
    const ms = $performanceNow() - token;
    this.observe(ms / 1000, TIMING_SAMPLE);
    if (ms > LONG_CALL_MS) {
      this.long += TIMING_SAMPLE;
    }
  }

  observe(seconds, weight) {
    let i = 0;
    while (i < DURATION_BOUNDS.length && seconds > DURATION_BOUNDS[i]) {
      i++;
    }
    this.buckets[i] += weight;
    this.sum += seconds * weight;
  }

  snapshot() {
    return { buckets: this.buckets.slice(), sum: this.sum, long: this.long };
  }
}
