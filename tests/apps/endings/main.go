// Command endings is the test app of panic forensics: one exported function (or start-up mode)
// per way a Go WASM instance can end. The page chooses the start-up mode with ?mode=.
package main

import (
	"errors"
	"os"
	"sync"
	"syscall/js"
	"time"
)

type thing struct{ name string }

var nilThing *thing

func export(api js.Value, name string, fn func(args []js.Value) any) {
	api.Set(name, js.FuncOf(func(this js.Value, args []js.Value) any { return fn(args) }))
}

func main() {
	mode := js.Global().Get("location").Get("search").String()
	switch mode {
	case "?mode=panic-main":
		panic("boom in main")
	case "?mode=return":
		return
	}

	api := js.Global().Get("Object").New()
	export(api, "panicValue", func(args []js.Value) any { panic("boom: " + args[0].String()) })
	export(api, "panicError", func(args []js.Value) any { panic(errors.New("wrapped: file does not exist")) })
	export(api, "nilDeref", func(args []js.Value) any { return nilThing.name })
	export(api, "panicInGoroutine", func(args []js.Value) any {
		done := make(chan struct{})
		go func() {
			defer close(done)
			panic("boom in goroutine")
		}()
		<-done
		return nil
	})
	export(api, "repanic", func(args []js.Value) any {
		defer func() {
			r := recover()
			panic(r)
		}()
		panic("boom again")
	})
	export(api, "nestedPanic", func(args []js.Value) any {
		defer func() { panic("second") }()
		panic("first")
	})
	export(api, "jsError", func(args []js.Value) any {
		return js.Global().Call("throwJSError", "js-boom")
	})
	export(api, "jsThrowString", func(args []js.Value) any {
		return js.Global().Call("throwJSString")
	})
	export(api, "unlockUnlocked", func(args []js.Value) any {
		var mu sync.Mutex
		mu.Unlock()
		return nil
	})
	export(api, "exit", func(args []js.Value) any {
		os.Exit(args[0].Int())
		return nil
	})
	export(api, "panicLater", func(args []js.Value) any {
		time.AfterFunc(time.Duration(args[0].Int())*time.Millisecond, func() { panic("boom in a Go timer") })
		return nil
	})
	export(api, "sleepInBackground", func(args []js.Value) any {
		// A goroutine that sleeps keeps a Go timer pending in JS (setTimeout) once this
		// callback returns: an exit before it fires leaves the timer to fire into a dead instance.
		ms := args[0].Int()
		go func() { time.Sleep(time.Duration(ms) * time.Millisecond) }()
		return nil
	})
	export(api, "busy", func(args []js.Value) any {
		deadline := time.Now().Add(time.Duration(args[0].Int()) * time.Millisecond)
		for time.Now().Before(deadline) {
		}
		return nil
	})
	export(api, "noop", func(args []js.Value) any { return nil })

	button := js.Global().Get("document").Call("getElementById", "explode")
	button.Call("addEventListener", "click", js.FuncOf(func(this js.Value, args []js.Value) any {
		panic("boom in a click listener")
	}))

	js.Global().Set("endings", api)
	js.Global().Call("onEndingsReady")
	select {}
}
