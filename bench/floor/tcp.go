package floor

import "context"

// probeTCP connects and hangs up, as a tcp probe without query_response.
func probeTCP(ctx context.Context, target string) error {
	conn, err := dial(ctx, target)
	if err != nil {
		return err
	}
	return conn.Close()
}
