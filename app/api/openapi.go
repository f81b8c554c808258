package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPI describes every REST route of the contract (OpenAPI 3.1). It is
// written by hand; openapi_test.go holds it and the route table to each
// other, both ways.
//
//go:embed openapi.json
var openAPI []byte

// HandleOpenAPI serves the OpenAPI document (GET /api/openapi.json).
func HandleOpenAPI(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPI)
}
