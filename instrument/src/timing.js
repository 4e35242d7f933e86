// timing.js: how long each JS->Go callback keeps the page's event loop in Go.
//
// Two performance.now() calls per callback (about 0.13 us against a ~13 us round trip). Pages
// that are not cross-origin isolated get a coarsened clock (100 us steps in Chromium), so the
// smallest buckets are only as good as the page's clock.

const DURATION_BOUNDS = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
  2.5, 5, 10,
]; // seconds; the last bucket (+Inf) is implied
const LONG_CALL_SECONDS = (Number(CONFIG.longCallMs) > 0 ? Number(CONFIG.longCallMs) : 50) / 1000;
const $performanceNow = typeof performance === "object" && performance && typeof performance.now === "function"
  ? performance.now.bind(performance)
  : $now;

class CallTiming {
  constructor() {
    this.buckets = new Array(DURATION_BOUNDS.length + 1).fill(0); // per bucket, not cumulative
    this.sum = 0;
    this.long = 0;
  }

  observe(seconds) {
    let i = 0;
    while (i < DURATION_BOUNDS.length && seconds > DURATION_BOUNDS[i]) {
      i++;
    }
    this.buckets[i]++;
    this.sum += seconds;
    if (seconds > LONG_CALL_SECONDS) {
      this.long++;
    }
  }

  snapshot() {
    return { buckets: this.buckets.slice(), sum: this.sum, long: this.long };
  }
}
