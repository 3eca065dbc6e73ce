package httpapi

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"boxoffice"
)

// The web page: plain HTML, CSS and JavaScript embedded in the binary (no
// build step, nothing fetched from elsewhere), served at / and /ui/<file>.
// It calls the same /v1 API as every other client.

//go:embed web
var webFiles embed.FS

// webAsset is one embedded file, ready to serve.
type webAsset struct {
	body        []byte
	contentType string
	etag        string
}

// loadWebAssets reads the embedded files once, with their content types and
// entity tags (a hash of the content, so that a new binary's files are
// fetched again and an unchanged one answers 304).
func loadWebAssets() (map[string]webAsset, error) {
	assets := make(map[string]webAsset)
	err := fs.WalkDir(webFiles, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := webFiles.ReadFile(p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // not left to the host's mime tables
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		assets[strings.TrimPrefix(p, "web/")] = webAsset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	return assets, err
}

// web serves the page: / is index.html; /ui/<file> the files it loads.
// Every answer must be revalidated (no-cache with an ETag): a page that
// mixed the files of two releases would call an API one of them lacks.
func (s *Server) web(ctx *fasthttp.RequestCtx, p string) {
	if !ctx.IsGet() && !ctx.IsHead() {
		writeProblem(ctx, boxoffice.CodeNotFound, "no route "+string(ctx.Method())+" "+p)
		return
	}
	name := "index.html"
	if p != "/" {
		name = strings.TrimPrefix(p, "/ui/")
	}
	a, ok := s.assets[name]
	if !ok {
		writeProblem(ctx, boxoffice.CodeNotFound, "no page "+p)
		return
	}
	h := &ctx.Response.Header
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if name == "index.html" {
		// The page loads only its own files and talks only to this origin.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
	}
	if string(ctx.Request.Header.Peek("If-None-Match")) == a.etag {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	h.SetContentType(a.contentType)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBody(a.body)
}

// devTokenTTL is how long a token from /dev/sign-in is valid.
const devTokenTTL = 12 * time.Hour

// devSignIn mints a token for any subject and role, for a local demo of the
// page: POST /dev/sign-in {"subject":"u1","role":"buyer"}. It exists only
// when the server was started with --dev-sign-in (Config.DevSignIn): anyone
// who reaches it can act as anyone, admin included.
func (s *Server) devSignIn(ctx *fasthttp.RequestCtx) {
	if !s.cfg.DevSignIn {
		writeProblem(ctx, boxoffice.CodeNotFound, "no route POST /dev/sign-in (the server was not started with --dev-sign-in)")
		return
	}
	if ctx.IsGet() {
		// The page asks, to show its sign-in form.
		writeJSON(ctx, fasthttp.StatusOK, map[string]bool{"enabled": true})
		return
	}
	if !ctx.IsPost() {
		writeProblem(ctx, boxoffice.CodeNotFound, "no route "+string(ctx.Method())+" /dev/sign-in")
		return
	}
	var req struct {
		Subject string `json:"subject"`
		Role    Role   `json:"role"`
	}
	if err := readJSON(ctx, &req); err != nil {
		writeError(ctx, err)
		return
	}
	if !boxoffice.ValidID(req.Subject) {
		writeProblem(ctx, boxoffice.CodeInvalidArgument, "subject must match [A-Za-z0-9._-]{1,64}")
		return
	}
	switch req.Role {
	case RoleBuyer, RoleOrganiser, RoleAdmin:
	default:
		writeProblem(ctx, boxoffice.CodeInvalidArgument, "role must be buyer, organiser or admin")
		return
	}
	tok, err := MintToken(s.cfg.AuthSecret, req.Subject, req.Role, devTokenTTL)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]string{"token": tok, "subject": req.Subject, "role": string(req.Role)})
}
