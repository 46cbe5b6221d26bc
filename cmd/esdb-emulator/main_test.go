package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseUsers(t *testing.T) {
	m, err := parseUsers("admin:changeit,ops:x:y")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"admin": "changeit", "ops": "x:y"}, m)
	_, err = parseUsers("nopassword")
	assert.Error(t, err)
}
