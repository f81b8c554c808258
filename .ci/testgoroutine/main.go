// Command testgoroutine checks that no test can be stopped from a
// goroutine other than its own. testing's FailNow (and Fatal, Skip …,
// which call it) must run on the test's goroutine: called elsewhere it
// ends only that goroutine, and the test goes on, or hangs, with its
// failure half reported.
//
// It parses every *_test.go file below the given folders (default: the
// module, from its root) and reports, as file:line, inside the function
// literal of every go statement, and of every X.Go(func() {…}) (a
// sync.WaitGroup's or an errgroup's) and b.RunParallel(func(pb) {…}),
// nested closures included:
//
//   - any call X.Fatal, X.Fatalf, X.FailNow, X.Skip, X.Skipf or X.SkipNow;
//   - any call that passes a test's *testing.T, *testing.B or testing.TB
//     (a parameter of the enclosing functions, by its declaration) to
//     another function, which may call those;
//   - any call of a method on that parameter other than the ones a
//     goroutine may call: Error, Errorf, Log, Logf, Helper, Name, TempDir,
//     Cleanup (and Fail, Failed, Context, which never stop a test).
//
// It also reports a go statement that hands the test's parameter to a
// function directly (go check(t)). A goroutine should instead report with
// t.Error or send its error back to the test's goroutine.
//
// Run it from the module root: go run ./.ci/testgoroutine. It exits 1
// when it finds anything. Folders whose names start with "." or "_", and
// testdata, are skipped, as the go command skips them.
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	roots := os.Args[1:]
	if len(roots) == 0 {
		roots = []string{"."}
	}
	var findings []finding
	for _, root := range roots {
		f, err := checkTree(root)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testgoroutine:", err)
			os.Exit(2)
		}
		findings = append(findings, f...)
	}
	for _, f := range findings {
		fmt.Println(f)
	}
	if len(findings) > 0 {
		fmt.Fprintf(os.Stderr, "testgoroutine: %d places where a goroutine other than the test's own can stop the test\n", len(findings))
		os.Exit(1)
	}
}

// finding is one place the check reports.
type finding struct {
	pos token.Position
	msg string
}

func (f finding) String() string {
	return fmt.Sprintf("%s:%d: %s", f.pos.Filename, f.pos.Line, f.msg)
}

// checkTree checks every *_test.go file below root.
func checkTree(root string) ([]finding, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, "_test.go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var all []finding
	for _, path := range files {
		f, err := checkFile(path)
		if err != nil {
			return nil, err
		}
		all = append(all, f...)
	}
	return all, nil
}

// stoppers are the testing methods that end the calling goroutine.
var stoppers = map[string]bool{"Fatal": true, "Fatalf": true, "FailNow": true, "Skip": true, "Skipf": true, "SkipNow": true}

// safe are the testing methods a goroutine other than the test's may call.
var safe = map[string]bool{"Error": true, "Errorf": true, "Log": true, "Logf": true, "Helper": true, "Name": true,
	"TempDir": true, "Cleanup": true, "Fail": true, "Failed": true, "Context": true}

// checkFile parses one file and checks it.
func checkFile(path string) ([]finding, error) {
	fset := token.NewFileSet()
	// Object resolution ties each use of a name to its declaration, so
	// that a t declared inside a goroutine does not pass for the test's.
	file, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return nil, err
	}
	c := &checker{fset: fset, tests: map[*ast.Object]bool{}}
	c.walk(file)
	sort.Slice(c.findings, func(i, j int) bool { return c.findings[i].pos.Offset < c.findings[j].pos.Offset })
	return c.findings, nil
}

type checker struct {
	fset     *token.FileSet
	tests    map[*ast.Object]bool // parameters typed *testing.T, *testing.B or testing.TB
	findings []finding
}

func (c *checker) report(n ast.Node, format string, args ...any) {
	c.findings = append(c.findings, finding{pos: c.fset.Position(n.Pos()), msg: fmt.Sprintf(format, args...)})
}

// walk records the testing parameters of every function and checks each
// go statement it meets.
func (c *checker) walk(root ast.Node) {
	ast.Inspect(root, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			c.addParams(n.Type)
		case *ast.FuncLit:
			c.addParams(n.Type)
		case *ast.GoStmt:
			c.checkGo(n.Call)
		case *ast.CallExpr:
			// wg.Go(func() {…}), errgroup's g.Go and b.RunParallel run
			// the literal on goroutines of their own, as a go statement does.
			if sel, ok := ast.Unparen(n.Fun).(*ast.SelectorExpr); ok && (sel.Sel.Name == "Go" || sel.Sel.Name == "RunParallel") && len(n.Args) == 1 {
				if lit, ok := ast.Unparen(n.Args[0]).(*ast.FuncLit); ok {
					c.checkLit(lit, nil)
				}
			}
		}
		return true
	})
}

func (c *checker) addParams(ft *ast.FuncType) {
	if ft.Params == nil {
		return
	}
	for _, field := range ft.Params.List {
		if !isTestingType(field.Type) {
			continue
		}
		for _, name := range field.Names {
			if name.Obj != nil {
				c.tests[name.Obj] = true
			}
		}
	}
}

// isTestingType reports *testing.T, *testing.B and testing.TB.
func isTestingType(e ast.Expr) bool {
	if star, ok := e.(*ast.StarExpr); ok {
		return isSelector(star.X, "testing", "T") || isSelector(star.X, "testing", "B")
	}
	return isSelector(e, "testing", "TB")
}

func isSelector(e ast.Expr, pkg, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg
}

// isTest reports whether e names a test's testing parameter.
func (c *checker) isTest(e ast.Expr) bool {
	id, ok := ast.Unparen(e).(*ast.Ident)
	return ok && id.Obj != nil && c.tests[id.Obj]
}

// checkGo checks the call of a go statement.
func (c *checker) checkGo(call *ast.CallExpr) {
	lit, ok := ast.Unparen(call.Fun).(*ast.FuncLit)
	if !ok {
		// go f(t) or go t.Method(): the parameter runs on the new goroutine.
		c.checkCall(call, "in a go statement")
		return
	}
	c.checkLit(lit, call.Args)
}

// checkLit checks a function literal that runs on a goroutine of its own,
// called with args.
func (c *checker) checkLit(lit *ast.FuncLit, args []ast.Expr) {
	c.addParams(lit.Type) // its own parameters count too: go func(t *testing.T) {…}(t)
	for _, arg := range args {
		if c.isTest(arg) {
			c.report(arg, "the test's %s is handed to a goroutine", arg.(*ast.Ident).Name)
		}
	}
	ast.Inspect(lit.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			c.addParams(n.Type)
		case *ast.CallExpr:
			c.checkCall(n, "in a goroutine")
		}
		return true
	})
}

// checkCall reports a call, made off the test's goroutine, that can stop
// the test.
func (c *checker) checkCall(call *ast.CallExpr, where string) {
	if sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr); ok {
		switch {
		case stoppers[sel.Sel.Name]:
			c.report(call, "%s.%s %s: it stops only that goroutine, not the test", exprString(sel.X), sel.Sel.Name, where)
			return
		case c.isTest(sel.X) && !safe[sel.Sel.Name]:
			c.report(call, "%s.%s %s: a goroutine may only call Error, Errorf, Log, Logf and the like", exprString(sel.X), sel.Sel.Name, where)
			return
		}
	}
	for _, arg := range call.Args {
		if c.isTest(arg) {
			c.report(call, "the test's %s is passed to %s %s, which may stop the test from there", exprString(arg), exprString(call.Fun), where)
			return
		}
	}
}

// exprString renders short expressions (names and selectors) for messages.
func exprString(e ast.Expr) string {
	switch e := ast.Unparen(e).(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.CallExpr:
		return exprString(e.Fun) + "(…)"
	case *ast.IndexExpr:
		return exprString(e.X) + "[…]"
	case *ast.FuncLit:
		return "func literal"
	}
	return "…"
}
