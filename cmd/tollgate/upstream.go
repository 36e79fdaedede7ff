package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/echo"
)

func upstreamCmd() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "upstream",
		Short: "Run a demo upstream: it answers every request 200 with what it received, and counts them (GET " + echo.CountsPath + ")",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			return runUpstream(ctx, listen, log)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:3000", "address to listen on (0.0.0.0:3000 inside a container)")
	return cmd
}

// runUpstream serves the echo upstream on listen until ctx ends.
func runUpstream(ctx context.Context, listen string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := newServer(echo.New(), log)
	errc := make(chan error, 1)
	go func() { errc <- serveHTTP(srv, ln) }()
	log.Info("demo upstream listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-errc
	log.Info("demo upstream stopped")
	return err
}
