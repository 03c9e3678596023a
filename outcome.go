package trimeter

// Outcome is what one call of fn came to: a value, or an error. Where runs
// yield outcomes ([Outcomes], [ThenOutcomes]), an error does not end the
// run: it is kept beside the input it belongs to.
type Outcome[R any] struct {
	Value R
	Err   error
}

// Unwrap returns the value and the error. When the call of fn failed, the
// value is R's zero value, whatever fn returned beside its error.
func (o Outcome[R]) Unwrap() (R, error) { return o.Value, o.Err }

// Input identifies the input an outcome belongs to: its position in the
// input sequence, counting from zero, and its value.
type Input[T any] struct {
	Index int
	Value T
}
