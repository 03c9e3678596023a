module github.com/trimeter-go/trimeter

go 1.23

require github.com/jonboulle/clockwork v0.5.0

require go.uber.org/goleak v1.3.0
