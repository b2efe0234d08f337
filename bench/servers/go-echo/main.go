// The Go reference of the echo protocol (4-byte big-endian length + payload): what a Go
// programmer writes, one goroutine per connection over buffered I/O (bufio), the pattern getty and
// Go's own net/http build on. A frame is read with io.ReadFull from the bufio.Reader and its reply
// written into the bufio.Writer; the writer is flushed once the reader has nothing buffered, so the
// replies to one read go out in one write, as in the raw servers of the other runtimes.
//
// `go build -o go-echo ./bench/servers/go-echo && PORT=7000 ./go-echo` (HOST default 127.0.0.1).
// bench/run.ts builds it with the Go toolchain on PATH, and leaves the row out when there is none.
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

const maxFrame = 16 * 1024 * 1024

func serve(conn net.Conn) {
	defer conn.Close()
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetNoDelay(true)
	}
	r := bufio.NewReaderSize(conn, 64*1024)
	w := bufio.NewWriterSize(conn, 64*1024)
	var header [4]byte
	payload := make([]byte, 4096)
	for {
		if _, err := io.ReadFull(r, header[:]); err != nil {
			return
		}
		length := binary.BigEndian.Uint32(header[:])
		if length > maxFrame {
			return
		}
		if int(length) > cap(payload) {
			payload = make([]byte, length)
		}
		body := payload[:length]
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		// The "handler": echo the payload.
		if _, err := w.Write(header[:]); err != nil {
			return
		}
		if _, err := w.Write(body); err != nil {
			return
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

func main() {
	host := os.Getenv("HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "7000"
	}
	listener, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		os.Exit(0)
	}()
	fmt.Printf("go echo server listening on %s\n", listener.Addr())
	for {
		conn, err := listener.Accept()
		if err != nil {
			continue
		}
		go serve(conn)
	}
}
