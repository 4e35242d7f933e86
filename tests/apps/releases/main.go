// Command releases is the test app of exact Release accounting: it creates and releases funcs
// in every pattern people write and keeps its own ledger, which the tests compare with the
// exporter's numbers.
package main

import (
	"fmt"
	"runtime"
	"syscall/js"
)

var ledger struct {
	created  int // js.FuncOf calls made by this app (fmt.Println's own are counted in printlns)
	released int // distinct funcs released
	printlns int // each fmt.Println creates and releases one func (syscall.fsCall)
	recovered int
}

var (
	leaked  []js.Func
	blocked chan struct{}
)

func funcOf(fn func(this js.Value, args []js.Value) any) js.Func {
	ledger.created++
	return js.FuncOf(fn)
}

func release(f js.Func, first bool) {
	f.Release()
	if first {
		ledger.released++
	}
}

func noop(js.Value, []js.Value) any { return nil }

// leakForever is the leak the tests look for: funcs created and never released.
func leakForever(n int) {
	for i := 0; i < n; i++ {
		leaked = append(leaked, funcOf(noop))
	}
}

func patterns() {
	// Released at once.
	release(funcOf(noop), true)

	// Released inside the callback itself (the `defer cb.Release()` pattern).
	var self js.Func
	self = funcOf(func(this js.Value, args []js.Value) any {
		defer release(self, true)
		return nil
	})
	self.Invoke()

	// Released from another goroutine.
	other := funcOf(noop)
	done := make(chan struct{})
	go func() {
		release(other, true)
		close(done)
	}()
	<-done

	// Released twice: the second Release changes nothing.
	twice := funcOf(noop)
	release(twice, true)
	release(twice, false)

	// Released while still running.
	var running js.Func
	running = funcOf(func(this js.Value, args []js.Value) any {
		release(running, true)
		x := 0
		for i := 0; i < 1000; i++ {
			x += i
		}
		return x
	})
	running.Invoke()

	// Created in goroutines, released in some.
	finished := make(chan struct{})
	for i := 0; i < 4; i++ {
		go func(i int) {
			f := funcOf(noop)
			if i%2 == 0 {
				release(f, true)
			} else {
				leaked = append(leaked, f)
			}
			finished <- struct{}{}
		}(i)
	}
	for i := 0; i < 4; i++ {
		<-finished
	}

	// Standard library churn: one FuncOf and one Release per line.
	fmt.Println("releases: patterns done")
	ledger.printlns++
}

func main() {
	api := js.Global().Get("Object").New()
	export := func(name string, fn func(args []js.Value) any) {
		api.Set(name, funcOf(func(this js.Value, args []js.Value) any { return fn(args) }))
	}
	export("patterns", func(args []js.Value) any { patterns(); return nil })
	export("leak", func(args []js.Value) any { leakForever(args[0].Int()); return nil })
	export("exportReleased", func(args []js.Value) any {
		f := funcOf(noop)
		js.Global().Set("releasedFunc", f)
		release(f, true)
		return nil
	})
	export("startGoroutines", func(args []js.Value) any {
		blocked = make(chan struct{})
		for i := 0; i < args[0].Int(); i++ {
			go func() { <-blocked }()
		}
		return nil
	})
	export("stopGoroutines", func(args []js.Value) any { close(blocked); return nil })
	export("gc", func(args []js.Value) any {
		for i := 0; i < args[0].Int(); i++ {
			runtime.GC()
		}
		return nil
	})
	export("recoverPanics", func(args []js.Value) any {
		for i := 0; i < args[0].Int(); i++ {
			func() {
				defer func() {
					if recover() != nil {
						ledger.recovered++
					}
				}()
				panic("caught")
			}()
		}
		return nil
	})
	export("ledger", func(args []js.Value) any {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return map[string]any{
			"created":    ledger.created,
			"released":   ledger.released,
			"printlns":   ledger.printlns,
			"recovered":  ledger.recovered,
			"numGC":      int(ms.NumGC),
			"goroutines": runtime.NumGoroutine(),
		}
	})
	js.Global().Set("releases", api)
	if cb := js.Global().Get("onReleasesReady"); cb.Type() == js.TypeFunction {
		cb.Invoke()
	}
	select {}
}
