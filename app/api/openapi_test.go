package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/confab/confab/app/server"
	"github.com/confab/confab/app/server/servertest"
)

type openAPIDoc struct {
	OpenAPI    string                    `json:"openapi"`
	Paths      map[string]map[string]any `json:"paths"`
	Components map[string]map[string]any `json:"components"`
}

func readOpenAPI(t *testing.T) (openAPIDoc, map[string]any) {
	t.Helper()
	b, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	var raw map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	json.Unmarshal(b, &raw)
	return doc, raw
}

// routeKey is "METHOD /path/{param}/" with the trailing slash the server's
// rewrite adds to every /api path, so that the document may name
// /api/openapi.json the way clients call it.
func routeKey(method, path string) string {
	path = regexp.MustCompile(`:([a-z_]+)`).ReplaceAllString(path, "{$1}")
	if strings.HasPrefix(path, "/api/") && !strings.HasSuffix(path, "/") {
		path += "/"
	}
	return strings.ToUpper(method) + " " + path
}

func TestOpenAPI_DocumentsEveryRouteAndOnlyRegisteredOnes(t *testing.T) {
	doc, _ := readOpenAPI(t)
	if doc.OpenAPI != "3.1.0" || len(doc.Paths) == 0 {
		t.Fatalf("openapi = %q with %d paths", doc.OpenAPI, len(doc.Paths))
	}
	srv := servertest.Start(t)
	e, ok := srv.Handler().(*echo.Echo)
	if !ok {
		t.Fatalf("handler is %T, not *echo.Echo", srv.Handler())
	}

	registered := map[string]bool{}
	var apiRoutes []string
	for _, r := range e.Routes() {
		if strings.HasSuffix(r.Path, "*") || r.Name == server.MethodNotAllowedRoute { // catch-alls: 404s, 405s and the console
			continue
		}
		k := routeKey(r.Method, r.Path)
		registered[k] = true
		if strings.HasPrefix(r.Path, "/api/") {
			apiRoutes = append(apiRoutes, k)
		}
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "patch", "delete", "head", "options":
				documented[routeKey(method, path)] = true
			}
		}
	}

	slices.Sort(apiRoutes)
	for _, k := range apiRoutes {
		if !documented[k] {
			t.Errorf("route %s is registered but not in openapi.json", k)
		}
	}
	for k := range documented {
		if !registered[k] {
			t.Errorf("openapi.json documents %s, which is not registered", k)
		}
	}
	if len(apiRoutes) < 19 {
		t.Errorf("only %d /api routes registered: %v", len(apiRoutes), apiRoutes)
	}
}

func TestOpenAPI_EveryRefResolves(t *testing.T) {
	_, raw := readOpenAPI(t)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "$ref" {
					if !resolves(raw, s) {
						t.Errorf("$ref %s does not resolve", s)
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(raw)
}

func resolves(root map[string]any, ref string) bool {
	var cur any = root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

func TestOpenAPI_Served(t *testing.T) {
	srv := servertest.Start(t)
	want, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/openapi.json", "/api/openapi.json/"} {
		resp := srv.Do(t, http.MethodGet, path, "", nil)
		if resp.Status != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("GET %s: %d %s", path, resp.Status, resp.Header.Get("Content-Type"))
		}
		if string(resp.Body) != string(want) {
			t.Errorf("GET %s: body differs from openapi.json", path)
		}
	}
}
