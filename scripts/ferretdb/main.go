// Command ferretdb runs FerretDB 1.24.2 (MongoDB wire protocol over PostgreSQL, or SQLite) for
// local development and tests. It embeds FerretDB's library instead of building its command:
// `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` compiles, but the binary
// panics at start because the module proxy's copy lacks build/version/version.txt, which
// FerretDB only demands when it is the main module.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listenAddr := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	handler := flag.String("handler", "postgresql", "storage backend: postgresql or sqlite")
	postgresqlURL := flag.String("postgresql-url", "", "PostgreSQL URL, for -handler=postgresql")
	sqliteURL := flag.String("sqlite-url", "file:data/", "SQLite directory URI ending with /, for -handler=sqlite")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		log.Fatalf("bad -log-level: %s", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listenAddr},
		Logger:        logger,
		Handler:       *handler,
		PostgreSQLURL: *postgresqlURL,
		SQLiteURL:     *sqliteURL,
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go stopWithParent(stop)

	logger.Info("listening", "addr", *listenAddr)
	if err := f.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// stopWithParent stops the server when the process that started it is gone (re-parented), so a
// service killed with SIGKILL, which can run no exit handler, does not leave FerretDB behind.
func stopWithParent(stop func()) {
	parent := os.Getppid()
	for range time.Tick(time.Second) {
		if os.Getppid() != parent {
			stop()
			return
		}
	}
}
