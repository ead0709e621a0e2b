package media

// SetDecodeHook lets a test watch the decodes running at once.
func SetDecodeHook(f func()) func() {
	old := decodeHook
	decodeHook = f
	return func() { decodeHook = old }
}
