package main

import (
	"context"
	"net"
	"net/http"
)

// A farm is one HTTP server on 127.0.0.1 that answers for many host names,
// telling them apart by the Host header.
type farm struct {
	hosts  []*host
	byName map[string]*host
	http   *http.Server
	addr   string
}

// startFarm starts a server for every host in plans, on a free port.
func startFarm(plans []hostPlan, r rules) (*farm, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &farm{byName: map[string]*host{}, addr: ln.Addr().String()}
	for _, p := range plans {
		h := newHost(p, r)
		f.hosts = append(f.hosts, h)
		f.byName[p.name] = h
	}
	f.http = &http.Server{Handler: f}
	go f.http.Serve(ln)
	return f, nil
}

func (f *farm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := f.byName[r.Host]
	if !ok {
		http.Error(w, "no such host", http.StatusMisdirectedRequest)
		return
	}
	h.ServeHTTP(w, r)
}

// Close stops the server and closes its connections.
func (f *farm) Close() error { return f.http.Close() }

// client returns an HTTP client that reaches every host of the farm: it
// dials the farm's address whatever the host name.
func (f *farm) client(connsPerHost int) *http.Client {
	var d net.Dialer
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, f.addr)
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: connsPerHost}}
}
