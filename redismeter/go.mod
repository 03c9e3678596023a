module github.com/trimeter-go/trimeter/redismeter

go 1.23

// Built here against the root module of this repository. A module that
// requires redismeter ignores this replace and gets the root module at the
// version required below: a commit of this repository with the API that
// redismeter uses.
replace github.com/trimeter-go/trimeter => ../

require (
	github.com/jonboulle/clockwork v0.5.0
	github.com/redis/go-redis/v9 v9.18.0
	github.com/trimeter-go/trimeter v0.0.0-20261126084831-866e21f64f2d
	go.uber.org/goleak v1.3.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dgryski/go-rendezvous v0.0.0-20200823014737-9f7001d12a5f // indirect
	go.uber.org/atomic v1.11.0 // indirect
)
