package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// natsLogger routes the embedded server's log lines into slog.
type natsLogger struct{ log *slog.Logger }

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }

// connectNATS returns the connection c names: c.Conn (owned by the
// caller: own is false), a connection to c.NATSURL, or one in-process to
// the embedded server it starts.
//
// With sm (authentication on) the embedded server runs the accounts and
// auth callout of auth.ServerConfig, and the Node connects to it as a
// service user of the PRISM account with a key made for this process.
func connectNATS(c Config, sm *secureMaterial, log *slog.Logger) (_ *nats.Conn, _ *server.Server, own bool, _ error) {
	if c.Conn != nil {
		return c.Conn, nil, false, nil
	}
	if c.NATSURL != "" {
		nc, err := nats.Connect(c.NATSURL, append([]nats.Option{nats.Name("prism"), nats.MaxReconnects(-1)}, c.NATSOptions...)...)
		if err != nil {
			return nil, nil, false, fmt.Errorf("connect to --nats-url %s: %w", c.NATSURL, err)
		}
		return nc, nil, true, nil
	}
	ns, err := startEmbeddedNATS(c, sm, log)
	if err != nil {
		return nil, nil, false, err
	}
	opts := []nats.Option{nats.InProcessServer(ns), nats.Name("prism")}
	if sm != nil {
		opts = append(opts, sm.nodeAuth())
	}
	nc, err := nats.Connect("", opts...)
	if err != nil {
		ns.Shutdown()
		return nil, nil, false, fmt.Errorf("connect to the embedded NATS server: %w", err)
	}
	return nc, ns, true, nil
}

// startEmbeddedNATS starts the embedded server of c and waits until it
// takes connections.
func startEmbeddedNATS(c Config, sm *secureMaterial, log *slog.Logger) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(c.NATSListen)
	if err != nil {
		return nil, fmt.Errorf("--nats-listen %q: want host:port: %w", c.NATSListen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("--nats-listen %q: bad port", c.NATSListen)
	}
	// Probe the port first: the server would only log the failure.
	if port != 0 {
		l, err := net.Listen("tcp", c.NATSListen)
		if err != nil {
			return nil, portTaken(c.NATSListen, host, portStr, err)
		}
		l.Close()
	}
	opts := &server.Options{
		ServerName: "prism",
		Host:       host,
		Port:       serverPort(port),
		JetStream:  true,
		StoreDir:   filepath.Join(c.DataDir, "jetstream"),
		SyncAlways: c.SyncAlways,
		NoSigs:     true,
	}
	if sm != nil {
		// The secured server's whole configuration comes from
		// auth.ServerConfig, the same text an external server runs.
		opts = &server.Options{NoSigs: true}
		if err := sm.configure(opts, c, host, port); err != nil {
			return nil, err
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS server: %w", err)
	}
	ns.SetLoggerV2(&natsLogger{log: log.With("component", "nats")}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS server did not become ready within 30s (see the log above)")
	}
	return ns, nil
}

// portTaken is the error of a --nats-listen address another process
// holds: it suggests a port free right now on the same host (and :0, any
// free port), or the running server at that address with --nats-url.
func portTaken(listen, host, port string, err error) error {
	free := net.JoinHostPort(host, "0")
	if l, lerr := net.Listen("tcp", free); lerr == nil {
		free = l.Addr().String()
		l.Close()
	}
	urlHost := host
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		urlHost = "127.0.0.1"
	}
	return fmt.Errorf("cannot listen on %s for the embedded NATS server (%v).\n"+
		"Another process (often a NATS server) holds that port. Either pick another port with\n"+
		"  --nats-listen %s   (free right now; %s takes any free port)\n"+
		"or use the running server with\n"+
		"  --nats-url nats://%s", listen, err, free, net.JoinHostPort(host, "0"), net.JoinHostPort(urlHost, port))
}

// serverPort maps a --nats-listen port to nats-server's option: the server
// reads 0 as its default port (4222), so "any free port" is RANDOM_PORT.
func serverPort(port int) int {
	if port == 0 {
		return server.RANDOM_PORT
	}
	return port
}
