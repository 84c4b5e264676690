//go:build !(linux && amd64)

package pmem

import (
	"errors"
	"os"
)

func mapSync(*os.File) ([]byte, func() error, error) {
	return nil, nil, errors.New("MAP_SYNC mappings are only tried on linux/amd64")
}
