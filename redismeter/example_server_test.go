package redismeter

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// The examples (example_test.go) run against a redis-server of their own,
// started by the first example that asks for its address and stopped once
// every test has run, before the leak check.
var exampleRedis struct {
	once sync.Once
	srv  *server
	err  error
}

// RedisAddrForExamples returns the address of the redis-server that the
// examples use, starting it on a free loopback port the first time. It
// panics, failing the example, when redis-server cannot be started.
func RedisAddrForExamples() string {
	exampleRedis.once.Do(func() {
		exampleRedis.srv, exampleRedis.err = startExampleRedis()
	})
	if exampleRedis.err != nil {
		panic(exampleRedis.err)
	}
	return exampleRedis.srv.addr()
}

func startExampleRedis() (*server, error) {
	dir, err := os.MkdirTemp("", "redismeter-examples-")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir}
	if err := s.launch(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("the examples' redis-server: %w", err)
	}
	return s, nil
}

// stopsExampleRedis runs the tests, then stops the examples' redis-server
// if one was started.
type stopsExampleRedis struct{ m *testing.M }

func (r stopsExampleRedis) Run() int {
	defer func() {
		if s := exampleRedis.srv; s != nil {
			s.stop()
			os.RemoveAll(s.dir)
		}
	}()
	return r.m.Run()
}
