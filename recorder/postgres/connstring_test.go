package postgres_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/eventsourcing-go/eventsourcing/recorder/postgres"
)

func TestConfigConnString(t *testing.T) {
	tests := []struct {
		name string
		cfg  postgres.Config
	}{
		{"plain", postgres.Config{Host: "db", Port: 5433, DBName: "es", User: "u", Password: "p"}},
		{"quotes, backslashes and spaces", postgres.Config{Host: "db", Port: 5432, DBName: "my db", User: "o'neil", Password: `a\b 'c' d=e`, SSLMode: "disable"}},
		{"empty password", postgres.Config{Host: "db", Port: 5432, DBName: "es", User: "u"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := pgconn.ParseConfig(tt.cfg.ConnString())
			require.NoError(t, err)
			assert.Equal(t, tt.cfg.Host, pc.Host)
			assert.Equal(t, uint16(tt.cfg.Port), pc.Port)
			assert.Equal(t, tt.cfg.DBName, pc.Database)
			assert.Equal(t, tt.cfg.User, pc.User)
			assert.Equal(t, tt.cfg.Password, pc.Password)
		})
	}
}
