// Command demo is a small Go WebAssembly app that shows each failure class gowasm-exporter
// watches for. It runs by itself (timers), so it is worth watching in a headless browser, and
// has buttons for a person:
//
//   - a callback leak: a js.FuncOf registered on every tick and never released;
//   - a Go heap / JS heap interaction leak: js.Values kept forever, and buffers kept in Go;
//   - a panic inside a callback, after ?panicAfter= seconds (default 90; 0 = never), which
//     kills the instance;
//   - calls after exit: the page keeps calling a Go function after that, and every call throws
//     "Go program has already exited".
package main

import (
	"fmt"
	"strconv"
	"syscall/js"
)

var (
	leakedFuncs []js.Func
	heldValues  []js.Value
	keptBuffers [][]byte
	ticks       int
)

func main() {
	doc := js.Global().Get("document")
	status := doc.Call("getElementById", "status")
	show := func() {
		status.Set("textContent", fmt.Sprintf(
			"ticks %d · leaked funcs %d · held js.Values %d · kept %d MiB",
			ticks, len(leakedFuncs), len(heldValues), len(keptBuffers)))
	}

	// A tick every second: leak one func, hold a few values, and now and then grow memory.
	tick := js.FuncOf(func(this js.Value, args []js.Value) any {
		ticks++
		leakedFuncs = append(leakedFuncs, js.FuncOf(func(js.Value, []js.Value) any { return nil }))
		for i := 0; i < 5; i++ {
			heldValues = append(heldValues, js.Global().Get("Object").New())
		}
		if ticks%15 == 0 {
			keptBuffers = append(keptBuffers, make([]byte, 1<<20))
		}
		// A well-behaved pattern next to the leak: registered and released at once.
		js.FuncOf(func(js.Value, []js.Value) any { return nil }).Release()
		show()
		return nil
	})
	js.Global().Call("setInterval", tick, 1000)

	onClick := func(id string, fn func()) {
		doc.Call("getElementById", id).Call("addEventListener", "click",
			js.FuncOf(func(this js.Value, args []js.Value) any { fn(); show(); return nil }))
	}
	onClick("leak", func() {
		for i := 0; i < 100; i++ {
			leakedFuncs = append(leakedFuncs, js.FuncOf(func(js.Value, []js.Value) any { return nil }))
		}
	})
	onClick("hold", func() {
		for i := 0; i < 1000; i++ {
			heldValues = append(heldValues, js.ValueOf(map[string]any{"n": i}))
		}
	})
	onClick("alloc", func() { keptBuffers = append(keptBuffers, make([]byte, 32<<20)) })
	onClick("panic", func() { panic("demo: panic in a click handler") })

	// The page calls this every 2 s; after the panic every call throws.
	js.Global().Set("demoHeartbeat", js.FuncOf(func(this js.Value, args []js.Value) any { return ticks }))

	panicAfter := 90
	if v := js.Global().Get("demoPanicAfter"); v.Type() == js.TypeString {
		if n, err := strconv.Atoi(v.String()); err == nil {
			panicAfter = n
		}
	}
	if panicAfter > 0 {
		var boom js.Func
		boom = js.FuncOf(func(this js.Value, args []js.Value) any {
			boom.Release()
			panic(fmt.Sprintf("demo: scheduled panic after %d s in a setTimeout callback", panicAfter))
		})
		js.Global().Call("setTimeout", boom, panicAfter*1000)
	}
	show()
	select {}
}
