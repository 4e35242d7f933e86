// Command bigmodule is the large Go WASM module of the module-load benchmark: a program that
// links a broad slice of the standard library (HTTP, crypto, encodings, templates, the Go parser,
// images, compression) so that its module is over 10 MB, the size where load-time rewriting
// must stay small next to compiling. Each package is used through a value the linker cannot
// prove dead (it depends on the page's URL), so the code stays in the module.
package main

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/flate"
	"compress/gzip"
	"compress/lzw"
	"compress/zlib"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"debug/dwarf"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/ascii85"
	"encoding/asn1"
	"encoding/base32"
	"encoding/base64"
	"encoding/csv"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/printer"
	"go/token"
	"go/types"
	"hash/crc32"
	htmltemplate "html/template"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/big"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/smtp"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"syscall/js"
	"text/template"
	"time"
	"unicode/utf16"
)

// touch keeps a value alive without doing anything visible.
var sink []any

func touch(v ...any) { sink = append(sink, v...) }

func main() {
	seed := js.Global().Get("location").Get("href").String()
	b := []byte(seed)

	touch(tar.NewReader(bytes.NewReader(b)), tar.NewWriter(&bytes.Buffer{}))
	touch(zip.NewWriter(&bytes.Buffer{}), bufio.NewReader(bytes.NewReader(b)))
	touch(bzip2.NewReader(bytes.NewReader(b)), lzw.NewReader(bytes.NewReader(b), lzw.LSB, 8))
	fw, _ := flate.NewWriter(&bytes.Buffer{}, flate.BestCompression)
	zw := zlib.NewWriter(&bytes.Buffer{})
	gw := gzip.NewWriter(&bytes.Buffer{})
	touch(fw, zw, gw)
	_, _ = gzip.NewReader(bytes.NewReader(b))

	block, _ := aes.NewCipher(make([]byte, 16))
	touch(block, md5.Sum(b), sha1.Sum(b), sha256.Sum256(b), sha512.Sum512(b), crc32.ChecksumIEEE(b))
	touch(hmac.New(sha256.New, b).Sum(nil))
	if len(seed) > 1<<20 { // never true: key generation is slow, but the code must be linked
		rk, _ := rsa.GenerateKey(rand.Reader, 2048)
		ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		_, edk, _ := ed25519.GenerateKey(rand.Reader)
		touch(rk, ek, edk)
	}
	_, _ = x509.ParseCertificate(b)
	touch(&tls.Config{ServerName: seed}, tls.Client(nil, &tls.Config{}))
	_, _ = sql.Open("none", seed)
	_, _ = dwarf.New(b, b, b, b, b, b, b, b)
	_, _ = elf.NewFile(bytes.NewReader(b))
	_, _ = macho.NewFile(bytes.NewReader(b))
	_, _ = pe.NewFile(bytes.NewReader(b))

	dst := make([]byte, 4*len(b))
	touch(ascii85.Encode(dst, b), base32.StdEncoding.EncodeToString(b), base64.StdEncoding.EncodeToString(b))
	touch(hex.EncodeToString(b), pem.EncodeToMemory(&pem.Block{Type: "X", Bytes: b}))
	_, _ = asn1.Marshal(seed)
	_, _ = csv.NewReader(strings.NewReader(seed)).ReadAll()
	_ = gob.NewEncoder(&bytes.Buffer{}).Encode(map[string]int{seed: 1})
	j, _ := json.Marshal(map[string]any{"seed": seed, "at": time.Now()})
	x, _ := xml.Marshal(struct{ Seed string }{seed})
	touch(j, x)

	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "x.go", "package x\nfunc F() int { return 1 }\n", parser.ParseComments)
	if err == nil {
		var out bytes.Buffer
		_ = printer.Fprint(&out, fset, file)
		_, _ = format.Source(out.Bytes())
		conf := types.Config{}
		_, _ = conf.Check("x", fset, []*ast.File{file}, nil)
	}

	tt := template.Must(template.New("t").Parse("{{.}}"))
	ht := htmltemplate.Must(htmltemplate.New("h").Parse("<p>{{.}}</p>"))
	_ = tt.Execute(&bytes.Buffer{}, seed)
	_ = ht.Execute(&bytes.Buffer{}, seed)

	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	draw.Draw(img, img.Bounds(), &image.Uniform{C: color.RGBA{R: 1, A: 255}}, image.Point{}, draw.Src)
	_ = png.Encode(&bytes.Buffer{}, img)
	_ = jpeg.Encode(&bytes.Buffer{}, img, nil)
	_ = gif.Encode(&bytes.Buffer{}, img, nil)
	_, _, _ = image.Decode(bytes.NewReader(b))

	n := new(big.Int).SetBytes(b)
	touch(n.ProbablyPrime(1), new(big.Float).SetInt(n).String())

	touch(multipart.NewWriter(&bytes.Buffer{}))
	_, _ = mail.ParseAddress("a@b.c")
	touch(smtp.PlainAuth("", seed, seed, "localhost"))
	u, _ := url.Parse(seed)
	req, _ := http.NewRequest("GET", seed, nil)
	rec := httptest.NewRecorder()
	http.NewServeMux().ServeHTTP(rec, req)
	touch(u, req, rec.Code, &http.Client{}, http.DefaultTransport)

	re := regexp.MustCompile(`^(\w+)://([^/]+)`)
	touch(re.FindStringSubmatch(seed), utf16.Encode([]rune(seed)))
	sort.Strings([]string{seed, "b"})

	js.Global().Set("bigmoduleSummary", fmt.Sprintf("%d values", len(sink)))
	if cb := js.Global().Get("onBigmoduleReady"); cb.Type() == js.TypeFunction {
		cb.Invoke()
	}
	select {}
}
