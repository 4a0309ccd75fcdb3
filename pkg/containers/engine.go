package containers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Engine is the part of the Docker Engine API the source uses. Every call
// is a read: the agent must be able to run with a read-only socket proxy in
// front of dockerd. *client.Client satisfies all of it but ExecProcess (see
// NewEngine); tests point a real client at a fake Engine API server.
type Engine interface {
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	Events(ctx context.Context, options client.EventsListOptions) client.EventsResult
	Info(ctx context.Context, options client.InfoOptions) (client.SystemInfoResult, error)
	ContainerTop(ctx context.Context, id string, options client.ContainerTopOptions) (client.ContainerTopResult, error)
	ImageList(ctx context.Context, options client.ImageListOptions) (client.ImageListResult, error)
	ImageInspect(ctx context.Context, id string, options ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImageHistory(ctx context.Context, id string, options ...client.ImageHistoryOption) (client.ImageHistoryResult, error)
	SwarmInspect(ctx context.Context, options client.SwarmInspectOptions) (client.SwarmInspectResult, error)
	NetworkList(ctx context.Context, options client.NetworkListOptions) (client.NetworkListResult, error)
	// ExecProcess returns GET /exec/{id}/json in full.
	ExecProcess(ctx context.Context, execID string) (container.ExecInspectResponse, error)
}

// NewEngine adapts the moby client. Its ExecInspect returns only a subset of
// the exec inspect response and drops ProcessConfig (user, privileged), which
// is exactly what an exec event must report; so ExecProcess issues the same
// GET itself over the client's own dialer and negotiated API version.
func NewEngine(c *client.Client) Engine {
	dial := c.Dialer()
	return &mobyEngine{Client: c, http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
	}}}
}

type mobyEngine struct {
	*client.Client
	http *http.Client
}

func (e *mobyEngine) ExecProcess(ctx context.Context, execID string) (container.ExecInspectResponse, error) {
	var out container.ExecInspectResponse
	if execID == "" || strings.ContainsAny(execID, "/?#") {
		return out, fmt.Errorf("exec inspect: invalid exec ID %q", execID)
	}
	if e.ClientVersion() == "" {
		// Negotiate first so the path carries the version dockerd speaks.
		if _, err := e.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
			return out, fmt.Errorf("exec inspect %s: ping docker: %w", execID, err)
		}
	}
	u := url.URL{Scheme: "http", Host: "docker", Path: "/v" + e.ClientVersion() + "/exec/" + execID + "/json"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return out, fmt.Errorf("exec inspect %s: %w", execID, err)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return out, fmt.Errorf("exec inspect %s: %w", execID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return out, fmt.Errorf("exec inspect %s: docker answered %s: %s", execID, resp.Status, strings.TrimSpace(string(msg)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return out, fmt.Errorf("exec inspect %s: decode response: %w", execID, err)
	}
	return out, nil
}
