package trimeter

// Outcome is what one call of fn came to: a value, or an error. Where runs
// yield outcomes ([Outcomes], [ThenOutcomes]), an error does not end the
// run: it is kept beside the input it belongs to.
type Outcome[R any] struct {
	Value R
	Err   error
}

// Unwrap returns the value and the error. When Err is not nil, the value
// it returns is R's zero value, whatever Value holds: an outcome a run
// yields for a failed call holds the zero value already, whatever fn
// returned beside its error, and one built by hand reads the same way.
func (o Outcome[R]) Unwrap() (R, error) {
	if o.Err != nil {
		var zero R
		return zero, o.Err
	}
	return o.Value, nil
}

// Input identifies the input an outcome belongs to: its position in the
// input sequence, counting from zero, and its value.
type Input[T any] struct {
	Index int
	Value T
}
