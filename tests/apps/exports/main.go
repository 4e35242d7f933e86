// Command exports is the test app of //go:wasmexport functions (Go 1.24+, see exports_go124.go):
// JS calls them on the instance's exports, past every callback hook. Older Go builds it without
// them.
package main

import "syscall/js"

func main() {
	if cb := js.Global().Get("onExportsReady"); cb.Type() == js.TypeFunction {
		cb.Invoke()
	}
	select {}
}
