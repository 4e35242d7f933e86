//go:build go1.24

package main

//go:wasmexport add
func add(a, b int32) int32 { return a + b }

//go:wasmexport boom
func boom() { panic("boom in a wasmexport") }
