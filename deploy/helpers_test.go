// Package deploy_test checks the deployment artefacts (docker-compose.yml,
// deploy/Dockerfile and deploy/k8s/*.yaml) against each other and against the
// code: structure, probes, label selectors, and that every environment
// variable they set is one authd reads (config.Names). build_test.go runs the
// image's build step, `make build`.
package deploy_test

import "github.com/seedc5a8123e/authd/internal/config"

// The tests run in deploy/, so the repository root is one level up.
const root = ".."

// makeBuildOutput is where the Makefile's build target writes the binary,
// relative to the directory make runs in: TestImageBuildStep checks that
// `make build` writes it, TestDockerfileBuildStage that the image copies it.
const makeBuildOutput = "bin/authd"

// knownNames returns the environment variables authd reads.
func knownNames() map[string]bool {
	m := map[string]bool{}
	for _, n := range config.Names {
		m[n] = true
	}
	return m
}
