// Command ledger is the test app of the exporter's exactness tests.
//
// It does what a leaking Go WASM app does (creates funcs it never releases,
// holds js.Values forever, allocates, panics in a callback, exits) and keeps
// its own ledger of everything it did, so that the tests can compare the
// exporter's numbers with the app's own truth. It never prints: every
// fmt.Println would create (and release) one js.FuncOf through syscall.fsCall
// and blur the ledger.
package main

import (
	"os"
	"runtime"
	"syscall/js"
)

var (
	funcsCreated int
	held         []js.Value
	kept         [][]byte
	leaked       []js.Func
)

// funcOf is js.FuncOf with a ledger entry.
func funcOf(fn func(this js.Value, args []js.Value) any) js.Func {
	funcsCreated++
	return js.FuncOf(fn)
}

func intArg(args []js.Value, i, def int) int {
	if len(args) > i && args[i].Type() == js.TypeNumber {
		return args[i].Int()
	}
	return def
}

func main() {
	api := js.Global().Get("Object").New()
	export := func(name string, fn func(args []js.Value) any) {
		api.Set(name, funcOf(func(this js.Value, args []js.Value) any { return fn(args) }))
	}

	// makeFuncs(n) creates n funcs from inside a callback and never releases them.
	export("makeFuncs", func(args []js.Value) any {
		n := intArg(args, 0, 1)
		for i := 0; i < n; i++ {
			leaked = append(leaked, funcOf(func(js.Value, []js.Value) any { return nil }))
		}
		return len(leaked)
	})
	// leakedFuncs returns the leaked funcs as a JS array, so JS can call them.
	export("leakedFuncs", func(args []js.Value) any {
		out := js.Global().Get("Array").New()
		for _, f := range leaked {
			out.Call("push", f)
		}
		return out
	})
	// hold(n) creates n JS objects and keeps a js.Value of each forever.
	export("hold", func(args []js.Value) any {
		n := intArg(args, 0, 1)
		obj := js.Global().Get("Object")
		for i := 0; i < n; i++ {
			held = append(held, obj.New())
		}
		return len(held)
	})
	// gc runs the Go garbage collector so that dropped js.Values are finalized.
	export("gc", func(args []js.Value) any {
		runtime.GC()
		runtime.GC()
		return nil
	})
	// alloc(mb) allocates mb MiB and keeps it, growing linear memory.
	export("alloc", func(args []js.Value) any {
		b := make([]byte, intArg(args, 0, 1)<<20)
		for i := range b {
			b[i] = byte(i)
		}
		kept = append(kept, b)
		return len(kept)
	})
	// panic(msg) panics inside this callback, which kills the instance.
	export("panic", func(args []js.Value) any {
		msg := "ledger panic"
		if len(args) > 0 && args[0].Type() == js.TypeString {
			msg = args[0].String()
		}
		panic(msg)
	})
	// exit(code) ends the program with os.Exit.
	export("exit", func(args []js.Value) any {
		os.Exit(intArg(args, 0, 0))
		return nil
	})
	// noop is the callback used to count JS->Go calls.
	export("noop", func(args []js.Value) any { return nil })
	// stats is the app's own ledger.
	export("stats", func(args []js.Value) any {
		return map[string]any{
			"funcsCreated": funcsCreated,
			"held":         len(held),
			"keptBytes":    len(kept) << 20,
		}
	})

	js.Global().Set("ledger", api)
	if cb := js.Global().Get("onLedgerReady"); cb.Type() == js.TypeFunction {
		cb.Invoke()
	}
	select {}
}
