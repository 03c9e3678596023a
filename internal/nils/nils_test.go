package nils_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/trimeter-go/trimeter/internal/nils"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type clock interface{ Now() int }

type fake struct{}

func (*fake) Now() int { return 0 }

type byValue struct{}

func (byValue) Now() int { return 0 }

type fn func() int

func (fn) Now() int { return 0 }

func TestIs(t *testing.T) {
	var nilPtr *fake
	var nilFn fn
	cases := []struct {
		name string
		v    clock
		want bool
	}{
		{"nil interface", nil, true},
		{"nil pointer", nilPtr, true},
		{"nil func", nilFn, true},
		{"pointer", &fake{}, false},
		{"value", byValue{}, false},
		{"func", fn(func() int { return 1 }), false},
	}
	for _, c := range cases {
		if got := nils.Is(c.v); got != c.want {
			t.Errorf("%s: Is = %v, want %v", c.name, got, c.want)
		}
	}
}
