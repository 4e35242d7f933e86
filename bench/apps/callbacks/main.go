// Command callbacks is the small Go WASM app of the benchmarks: the two hot paths the shim sits
// on (a JS->Go callback round trip, a js.FuncOf+Release cycle), a panic on demand for the
// event-latency benchmark, and optional background activity for the scale benchmarks.
//
// Every loop is timed inside the page with performance.now(), so what is measured is the page's
// own cost, not the CDP round trip that starts it. It never prints: fmt.Println would create and
// release a js.Func per line (syscall.fsCall) and add work the benchmarks do not ask for.
package main

import "syscall/js"

func main() {
	api := js.Global().Get("Object").New()
	export := func(name string, fn func(this js.Value, args []js.Value) any) {
		api.Set(name, js.FuncOf(fn))
	}

	// add(a, b): the round trip of the benchmark, a callback that reads two numbers and returns one.
	export("add", func(this js.Value, args []js.Value) any {
		return args[0].Int() + args[1].Int()
	})
	// noop(): a callback with no arguments, for background activity.
	export("noop", func(this js.Value, args []js.Value) any { return nil })
	// funcOfRelease(n) loops js.FuncOf then Release n times inside one callback.
	export("funcOfRelease", func(this js.Value, args []js.Value) any {
		n := args[0].Int()
		for i := 0; i < n; i++ {
			f := js.FuncOf(func(js.Value, []js.Value) any { return nil })
			f.Release()
		}
		return n
	})
	// panic(msg) panics inside the callback: the instance ends.
	export("panic", func(this js.Value, args []js.Value) any {
		panic("bench panic " + args[0].String())
	})

	js.Global().Set("bench", api)
	if cb := js.Global().Get("onBenchReady"); cb.Type() == js.TypeFunction {
		cb.Invoke()
	}
	select {}
}
