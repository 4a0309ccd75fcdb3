package images

import (
	"context"

	"github.com/moby/moby/client"
)

// Engine is the part of the Docker Engine API the source uses. Every call
// is a read (the image export is GET /images/get), so the agent can run
// behind a socket proxy that allows reads only. *client.Client has it all.
type Engine interface {
	ImageList(ctx context.Context, options client.ImageListOptions) (client.ImageListResult, error)
	ImageSave(ctx context.Context, imageIDs []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error)
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerDiff(ctx context.Context, id string, options client.ContainerDiffOptions) (client.ContainerDiffResult, error)
	Events(ctx context.Context, options client.EventsListOptions) client.EventsResult
}
