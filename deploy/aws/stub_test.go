package awsdeploy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// stub is a local HTTP server speaking enough of the EC2 query API and the
// Lambda REST API for Deploy and Teardown, with state per region (read from
// the request's SigV4 credential scope). It records every call and refuses
// what AWS would refuse: unknown ids, an address released while its
// instance runs, a security group deleted while an instance uses it.
type stub struct {
	mu      sync.Mutex
	n       int
	calls   []call
	regions map[string]*regionState
}

// call is one recorded API call.
type call struct {
	Region, Op string
	Form       url.Values
	JSON       map[string]any
}

type resource struct {
	id     string
	tags   map[string]string
	gone   bool
	state  string              // instances: pending, running, shutting-down, terminated
	group  string              // instances: their security group
	ip     string              // addresses
	inst   string              // addresses: associated instance
	perms  map[string][]string // security groups: "from-to" -> cidrs
	user   string              // instances: decoded user data
	arn    string              // functions
	zipLen int
}

type regionState struct {
	groups, addrs, insts, funcs []*resource
}

func newStub() *stub { return &stub{regions: map[string]*regionState{}} }

var scopeRE = regexp.MustCompile(`Credential=[^/]+/\d+/([a-z0-9-]+)/([a-z0-9]+)/aws4_request`)

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := scopeRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		http.Error(w, "unsigned request", http.StatusForbidden)
		return
	}
	region, service := m[1], m[2]
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.regions[region]
	if rs == nil {
		rs = &regionState{}
		s.regions[region] = rs
	}
	switch service {
	case "ec2":
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		op := r.PostForm.Get("Action")
		s.calls = append(s.calls, call{Region: region, Op: "ec2:" + op, Form: r.PostForm})
		body, code, msg := s.ec2(rs, op, r.PostForm)
		if code != "" {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>stub</RequestID></Response>`, code, msg)
			return
		}
		fmt.Fprintf(w, `<%sResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>stub</requestId>%s</%sResponse>`, op, body, op)
	case "lambda":
		s.lambda(w, r, region, rs)
	default:
		http.Error(w, "unknown service "+service, http.StatusBadRequest)
	}
}

func (s *stub) id(prefix string) string {
	s.n++
	return fmt.Sprintf("%s-%05d", prefix, s.n)
}

// tagsOf returns the tags of the TagSpecification of resource type rt.
func tagsOf(f url.Values, rt string) map[string]string {
	tags := map[string]string{}
	for i := 1; f.Has(fmt.Sprintf("TagSpecification.%d.ResourceType", i)); i++ {
		if f.Get(fmt.Sprintf("TagSpecification.%d.ResourceType", i)) != rt {
			continue
		}
		for j := 1; f.Has(fmt.Sprintf("TagSpecification.%d.Tag.%d.Key", i, j)); j++ {
			tags[f.Get(fmt.Sprintf("TagSpecification.%d.Tag.%d.Key", i, j))] = f.Get(fmt.Sprintf("TagSpecification.%d.Tag.%d.Value", i, j))
		}
	}
	return tags
}

// list returns the values of prefix.1, prefix.2, ...
func list(f url.Values, prefix string) []string {
	var out []string
	for i := 1; f.Has(fmt.Sprintf("%s.%d", prefix, i)); i++ {
		out = append(out, f.Get(fmt.Sprintf("%s.%d", prefix, i)))
	}
	return out
}

// matches applies the request's filters (tag:K and instance-state-name).
func matches(f url.Values, r *resource) bool {
	for i := 1; f.Has(fmt.Sprintf("Filter.%d.Name", i)); i++ {
		name := f.Get(fmt.Sprintf("Filter.%d.Name", i))
		vals := list(f, fmt.Sprintf("Filter.%d.Value", i))
		var have string
		switch {
		case strings.HasPrefix(name, "tag:"):
			v, ok := r.tags[strings.TrimPrefix(name, "tag:")]
			if !ok {
				return false
			}
			have = v
		case name == "instance-state-name":
			have = r.state
		default:
			return false
		}
		if !contains(vals, have) {
			return false
		}
	}
	return true
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

func find(rs []*resource, id string) *resource {
	for _, r := range rs {
		if r.id == id && !r.gone {
			return r
		}
	}
	return nil
}

func (s *stub) ec2(rs *regionState, op string, f url.Values) (body, code, msg string) {
	switch op {
	case "CreateSecurityGroup":
		for _, g := range rs.groups {
			if !g.gone && g.tags["Name"] == f.Get("GroupName") {
				return "", "InvalidGroup.Duplicate", "exists"
			}
		}
		g := &resource{id: s.id("sg"), tags: tagsOf(f, "security-group"), perms: map[string][]string{}}
		g.tags["Name"] = f.Get("GroupName")
		rs.groups = append(rs.groups, g)
		return "<groupId>" + g.id + "</groupId>", "", ""
	case "AllocateAddress":
		a := &resource{id: s.id("eipalloc"), tags: tagsOf(f, "elastic-ip")}
		a.ip = fmt.Sprintf("203.0.113.%d", s.n%250+1)
		rs.addrs = append(rs.addrs, a)
		return fmt.Sprintf("<allocationId>%s</allocationId><publicIp>%s</publicIp><domain>vpc</domain>", a.id, a.ip), "", ""
	case "AuthorizeSecurityGroupIngress":
		g := find(rs.groups, f.Get("GroupId"))
		if g == nil {
			return "", "InvalidGroup.NotFound", f.Get("GroupId")
		}
		for i := 1; f.Has(fmt.Sprintf("IpPermissions.%d.FromPort", i)); i++ {
			key := f.Get(fmt.Sprintf("IpPermissions.%d.FromPort", i)) + "-" + f.Get(fmt.Sprintf("IpPermissions.%d.ToPort", i))
			for j := 1; f.Has(fmt.Sprintf("IpPermissions.%d.IpRanges.%d.CidrIp", i, j)); j++ {
				g.perms[key] = append(g.perms[key], f.Get(fmt.Sprintf("IpPermissions.%d.IpRanges.%d.CidrIp", i, j)))
			}
		}
		return "<return>true</return>", "", ""
	case "RunInstances":
		sgs := list(f, "SecurityGroupId")
		if len(sgs) != 1 || find(rs.groups, sgs[0]) == nil {
			return "", "InvalidGroup.NotFound", strings.Join(sgs, ",")
		}
		ud, err := base64.StdEncoding.DecodeString(f.Get("UserData"))
		if err != nil {
			return "", "InvalidParameterValue", "user data is not base64"
		}
		n, _ := strconv.Atoi(f.Get("MinCount"))
		var b strings.Builder
		b.WriteString("<instancesSet>")
		for range n {
			in := &resource{id: s.id("i"), tags: tagsOf(f, "instance"), state: "pending", group: sgs[0], user: string(ud)}
			rs.insts = append(rs.insts, in)
			fmt.Fprintf(&b, "<item><instanceId>%s</instanceId><instanceState><code>0</code><name>pending</name></instanceState></item>", in.id)
		}
		b.WriteString("</instancesSet>")
		return b.String(), "", ""
	case "DescribeInstances":
		ids := list(f, "InstanceId")
		var b strings.Builder
		b.WriteString("<reservationSet><item><instancesSet>")
		for _, in := range rs.insts {
			if len(ids) > 0 && !contains(ids, in.id) || len(ids) == 0 && !matches(f, in) {
				continue
			}
			fmt.Fprintf(&b, "<item><instanceId>%s</instanceId><instanceState><code>0</code><name>%s</name></instanceState></item>", in.id, in.state)
			// Every Describe moves a transition on: the caller must poll.
			switch in.state {
			case "pending":
				in.state = "running"
			case "shutting-down":
				in.state = "terminated"
			}
		}
		b.WriteString("</instancesSet></item></reservationSet>")
		return b.String(), "", ""
	case "AssociateAddress":
		a, in := find(rs.addrs, f.Get("AllocationId")), find(rs.insts, f.Get("InstanceId"))
		if a == nil || in == nil || in.state != "running" {
			return "", "InvalidParameterValue", "unknown address or instance not running"
		}
		a.inst = in.id
		return "<associationId>" + s.id("eipassoc") + "</associationId>", "", ""
	case "TerminateInstances":
		for _, id := range list(f, "InstanceId") {
			in := find(rs.insts, id)
			if in == nil {
				return "", "InvalidInstanceID.NotFound", id
			}
			in.state = "shutting-down"
		}
		return "<instancesSet></instancesSet>", "", ""
	case "DescribeAddresses":
		var b strings.Builder
		b.WriteString("<addressesSet>")
		for _, a := range rs.addrs {
			if !a.gone && matches(f, a) {
				fmt.Fprintf(&b, "<item><allocationId>%s</allocationId><publicIp>%s</publicIp></item>", a.id, a.ip)
			}
		}
		b.WriteString("</addressesSet>")
		return b.String(), "", ""
	case "ReleaseAddress":
		a := find(rs.addrs, f.Get("AllocationId"))
		if a == nil {
			return "", "InvalidAllocationID.NotFound", f.Get("AllocationId")
		}
		if in := find(rs.insts, a.inst); in != nil && in.state != "terminated" {
			return "", "InvalidIPAddress.InUse", "associated with " + in.id
		}
		a.gone = true
		return "<return>true</return>", "", ""
	case "DescribeSecurityGroups":
		var b strings.Builder
		b.WriteString("<securityGroupInfo>")
		for _, g := range rs.groups {
			if !g.gone && matches(f, g) {
				fmt.Fprintf(&b, "<item><groupId>%s</groupId></item>", g.id)
			}
		}
		b.WriteString("</securityGroupInfo>")
		return b.String(), "", ""
	case "DeleteSecurityGroup":
		g := find(rs.groups, f.Get("GroupId"))
		if g == nil {
			return "", "InvalidGroup.NotFound", f.Get("GroupId")
		}
		for _, in := range rs.insts {
			if in.group == g.id && in.state != "terminated" {
				return "", "DependencyViolation", "used by " + in.id
			}
		}
		g.gone = true
		return "<return>true</return>", "", ""
	}
	return "", "InvalidAction", op
}

func (s *stub) lambda(w http.ResponseWriter, r *http.Request, region string, rs *regionState) {
	data, _ := io.ReadAll(r.Body)
	var in map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	path := r.URL.EscapedPath()
	fail := func(code int, typ string) {
		w.Header().Set("X-Amzn-Errortype", typ)
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"message":%q}`, typ)
	}
	switch {
	case r.Method == http.MethodPost && path == "/2015-03-31/functions":
		s.calls = append(s.calls, call{Region: region, Op: "lambda:CreateFunction", JSON: in})
		name, _ := in["FunctionName"].(string)
		code, _ := in["Code"].(map[string]any)
		zip, _ := base64.StdEncoding.DecodeString(fmt.Sprint(code["ZipFile"]))
		tags := map[string]string{}
		if t, ok := in["Tags"].(map[string]any); ok {
			for k, v := range t {
				tags[k] = fmt.Sprint(v)
			}
		}
		for _, f := range rs.funcs {
			if !f.gone && f.id == name {
				fail(http.StatusConflict, "ResourceConflictException")
				return
			}
		}
		f := &resource{id: name, tags: tags, arn: "arn:aws:lambda:" + region + ":000000000000:function:" + name, zipLen: len(zip)}
		rs.funcs = append(rs.funcs, f)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"FunctionName": name, "FunctionArn": f.arn})
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/2015-03-31/functions"):
		s.calls = append(s.calls, call{Region: region, Op: "lambda:ListFunctions"})
		var fs []map[string]any
		for _, f := range rs.funcs {
			if !f.gone {
				fs = append(fs, map[string]any{"FunctionName": f.id, "FunctionArn": f.arn})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"Functions": fs})
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/2017-03-31/tags/"):
		s.calls = append(s.calls, call{Region: region, Op: "lambda:ListTags"})
		arn, _ := url.PathUnescape(strings.TrimPrefix(path, "/2017-03-31/tags/"))
		for _, f := range rs.funcs {
			if !f.gone && f.arn == arn {
				json.NewEncoder(w).Encode(map[string]any{"Tags": f.tags})
				return
			}
		}
		fail(http.StatusNotFound, "ResourceNotFoundException")
	case r.Method == http.MethodDelete && strings.HasPrefix(path, "/2015-03-31/functions/"):
		s.calls = append(s.calls, call{Region: region, Op: "lambda:DeleteFunction"})
		name, _ := url.PathUnescape(strings.TrimPrefix(path, "/2015-03-31/functions/"))
		if f := find(rs.funcs, name); f != nil {
			f.gone = true
			w.WriteHeader(http.StatusNoContent)
			return
		}
		fail(http.StatusNotFound, "ResourceNotFoundException")
	default:
		http.Error(w, "stub: "+r.Method+" "+path, http.StatusNotFound)
	}
}

// live returns the resources of region not deleted (instances: not
// terminated), by kind.
func (s *stub) live(region string) (groups, addrs, insts, funcs []*resource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.regions[region]
	if rs == nil {
		return
	}
	for _, g := range rs.groups {
		if !g.gone {
			groups = append(groups, g)
		}
	}
	for _, a := range rs.addrs {
		if !a.gone {
			addrs = append(addrs, a)
		}
	}
	for _, in := range rs.insts {
		if in.state != "terminated" {
			insts = append(insts, in)
		}
	}
	for _, f := range rs.funcs {
		if !f.gone {
			funcs = append(funcs, f)
		}
	}
	return
}

// ops returns the recorded operations from index from on, as
// "region op", consecutive repeats of one DescribeInstances collapsed
// (the number of polls depends on the server).
func (s *stub) ops(from int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, c := range s.calls[from:] {
		line := c.Region + " " + c.Op
		if len(out) > 0 && out[len(out)-1] == line && c.Op == "ec2:DescribeInstances" {
			continue
		}
		out = append(out, line)
	}
	return out
}

func sortedKeys(m map[string][]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
