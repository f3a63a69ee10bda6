#!/usr/bin/env python3
"""Writes the subset of the ocsf-schema v1.3.0 tree that Vigil's classes need (requirements,
types, extends, $include; descriptions and enum captions dropped), in the layout of an
ocsf/ocsf-schema checkout, for scripts/ocsf-schema-pin:

    python3 ocsf-1.3.0-subset.py /tmp/ocsf-1.3.0
    scripts/ocsf-schema-pin /tmp/ocsf-1.3.0 --out schema.json --source "..."

Transcribed (see README.md beside this file for the exact sources and commits) from:
- events, objects, dictionary: mcm/pydantic-ocsf ocsf/schemas/v1_3_0.json @7895bfca4df1,
  an aggregate of the ocsf/ocsf-schema v1.3.0 tree (its version_info says 1.3.0);
- includes/classification.json, profiles/cloud.json: ocsf/ocsf-schema @01d6c7cba03b;
- profiles/security_control.json: ocsf/ocsf-schema @01338e8a035f, less the attributes added
  after 1.3.0 (is_alert, confidence*, risk_*);
- profiles/host.json: the 1.3.0 export ocsf/ocsf-lib-py schema_cache/schema-1.3.0.json
  @c1f403e1a581 (the stored ocsf-schema copy is pre-1.0);
- includes/occurrence.json and the profiles no Vigil event declares (network_proxy,
  load_balancer, osint, data_classification, container): from the OCSF 1.3.0 documentation.
A checkout of ocsf/ocsf-schema at tag v1.3.0 gives the same (and more) and supersedes this.
"""
import json, os, sys

root = sys.argv[1]
R = {"r": "required", "R": "recommended", "o": "optional"}

def attrs(spec, extra=None):
    out = {}
    for item in spec.split():
        name, _, req = item.partition(":")
        a = {}
        if req and req != "-":
            a["requirement"] = R[req]
        out[name] = a
    for name, more in (extra or {}).items():
        out.setdefault(name, {}).update(more)
    return out

def write(path, doc):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)

write("version.json", {"version": "1.3.0"})
write("categories.json", {"attributes": {"system": {"uid": 1}, "findings": {"uid": 2}, "iam": {"uid": 3},
    "network": {"uid": 4}, "discovery": {"uid": 5}, "application": {"uid": 6}, "remediation": {"uid": 7}}})

# includes and profiles (ocsf/ocsf-schema includes/*.json, profiles/*.json)
write("includes/classification.json", {"attributes": attrs("activity_name:o activity_id:r category_name:o category_uid:r class_name:o class_uid:r type_name:o type_uid:r")})
write("includes/occurrence.json", {"attributes": attrs("count:o duration:o end_time:o start_time:o time:r timezone_offset:R")})
write("includes/network/network_activities.json", {"attributes": {}})
write("profiles/cloud.json", {"name": "cloud", "attributes": attrs("cloud:r api:o")})
write("profiles/host.json", {"name": "host", "attributes": attrs("device:R actor:o")})
write("profiles/security_control.json", {"name": "security_control", "attributes": attrs(
    "action:o action_id:R attacks:o authorizations:o disposition:o disposition_id:R firewall_rule:o malware:o policy:o")})
write("profiles/network_proxy.json", {"name": "network_proxy", "attributes": attrs(
    "proxy_connection_info:R proxy_endpoint:R proxy_http_request:R proxy_http_response:R proxy_tls:R proxy_traffic:R")})
write("profiles/load_balancer.json", {"name": "load_balancer", "attributes": attrs("load_balancer:R")})
write("profiles/osint.json", {"name": "osint", "attributes": attrs("osint:r")})
write("profiles/data_classification.json", {"name": "data_classification", "attributes": attrs("data_classification:R")})
write("profiles/container.json", {"name": "container", "attributes": attrs("container:R namespace_pid:R")})

def event(path, name, extends, spec, uid=None, category=None, include=(), extra=None):
    doc = {"name": name, "attributes": attrs(spec, extra)}
    if extends: doc["extends"] = extends
    if uid is not None: doc["uid"] = uid
    if category: doc["category"] = category
    if include: doc["attributes"]["$include"] = list(include)
    write("events/" + path, doc)

event("base_event.json", "base_event", None,
      "enrichments:o message:R metadata:r observables:R raw_data:o severity:o severity_id:r status:R status_code:R status_detail:R status_id:R unmapped:o",
      category="other", include=["includes/classification.json", "includes/occurrence.json", "profiles/cloud.json", "profiles/osint.json"])
event("application/application.json", "application", "base_event", "", category="application")
event("application/api_activity.json", "api_activity", "application",
      "activity_id:- actor:r api:r dst_endpoint:R http_request:R resources:R src_endpoint:r", uid=3,
      extra={"actor": {"profile": None}, "api": {"profile": None}})
event("iam/iam.json", "iam", "base_event", "http_request:o src_endpoint:R", category="iam", include=["profiles/host.json"])
event("iam/account_change.json", "account_change", "iam", "actor:R policy:o user:r user_result:R", uid=1,
      extra={"actor": {"profile": None}})
event("iam/authentication.json", "authentication", "iam",
      "actor:- auth_factors:o auth_protocol:R auth_protocol_id:R certificate:R dst_endpoint:R is_cleartext:o is_mfa:R "
      "is_new_logon:o is_remote:R logon_process:o logon_type:R logon_type_id:R service:R session:R status_detail:- user:r", uid=2,
      extra={"actor": {"profile": None}})
event("network/network.json", "network", "base_event",
      "app_name:o connection_info:R dst_endpoint:r ja4_fingerprint_list:o proxy:R src_endpoint:R tls:o traffic:R", category="network",
      include=["profiles/host.json", "profiles/network_proxy.json", "profiles/security_control.json", "profiles/load_balancer.json"])
event("network/network_activity.json", "network_activity", "network", "url:R", uid=1, include=["includes/network/network_activities.json"])
event("system/system.json", "system", "base_event", "actor:r device:r", category="system", include=["profiles/security_control.json"])
event("system/file_activity.json", "file_activity", "system",
      "access_mask:o actor:r component:R connection_uid:o create_mask:R file:r file_diff:R file_result:R", uid=1)
event("discovery/discovery.json", "discovery", "base_event", "", category="discovery")
event("discovery/device_config_state_change.json", "device_config_state_change", "discovery",
      "actor:o device:r prev_security_level:R prev_security_level_id:R prev_security_states:R security_level:R "
      "security_level_id:R security_states:R state:o state_id:R", uid=19)
event("findings/finding.json", "finding", "base_event",
      "activity_name:- activity_id:- comment:o confidence:o confidence_id:R confidence_score:o device:R end_time:o finding_info:r "
      "start_time:o status:o status_id:R", category="findings", include=["profiles/host.json"])
event("findings/vulnerability_finding.json", "vulnerability_finding", "finding", "resource:R resources:R vulnerabilities:r", uid=2)
event("findings/compliance_finding.json", "compliance_finding", "finding", "compliance:r remediation:R resource:R resources:R", uid=3)
event("findings/detection_finding.json", "detection_finding", "finding",
      "evidences:R impact:o impact_id:o impact_score:o remediation:o resources:R risk_level:o risk_level_id:o risk_score:o "
      "risk_details:o vulnerabilities:o", uid=4, include=["profiles/security_control.json"])

def obj(name, extends, spec, include=(), extra=None):
    doc = {"name": name, "attributes": attrs(spec, extra)}
    if extends: doc["extends"] = extends
    if include: doc["attributes"]["$include"] = list(include)
    write("objects/" + name.lstrip("_") + (".json" if not name.startswith("_") else "_base.json") if False else "objects/" + name + ".json", doc)

obj("object", None, "")
obj("_entity", "object", "name:R uid:R")
obj("_resource", "_entity", "data:o labels:o name:- type:o uid:-", include=["profiles/data_classification.json"])
obj("account", "_entity", "name:- type:o type_id:R uid:- labels:o")
obj("actor", "object", "app_name:o app_uid:o authorizations:o idp:o invoked_by:o process:R session:o user:R")
obj("affected_code", "object", "end_line:R file:r owner:o remediation:o start_line:R")
obj("package", "object", "architecture:R cpe_name:o epoch:o hash:o license:o name:r purl:o release:o vendor_name:o type:o type_id:R version:r")
obj("affected_package", "package", "fixed_in_version:o package_manager:o path:o remediation:o")
obj("analytic", "_entity", "category:o desc:o name:- related_analytics:o type:o type_id:r uid:- version:o")
obj("api", "object", "group:o operation:r request:R response:R service:o version:o")
obj("autonomous_system", "object", "number:R name:R", extra={"number": {"type": "integer_t"}})
obj("cloud", "object", "account:o org:o project_uid:o provider:r region:R zone:o")
obj("compliance", "object", "compliance_references:o compliance_standards:o control:R requirements:o standards:r status:R status_code:o status_detail:o status_id:R")
obj("cve", "object", "created_time:R cvss:R cwe:o cwe_uid:o cwe_url:o desc:o epss:o modified_time:o product:o references:R title:R type:R uid:r")
obj("cvss", "object", "base_score:r depth:R metrics:o overall_score:R severity:o vector_string:o version:r")
obj("cwe", "object", "caption:o src_url:o uid:r")
obj("endpoint", "_entity", "agent_list:o domain:o hostname:R hw_info:o instance_uid:R interface_name:R interface_uid:R ip:R location:o mac:o "
    "name:- os:o owner:R subnet_uid:o type:o type_id:R uid:- vlan_uid:o vpc_uid:o zone:o", include=["profiles/container.json"])
obj("device", "endpoint", "autoscale_uid:o boot_time:o created_time:o desc:o domain:o first_seen_time:o groups:o hostname:R hypervisor:o "
    "image:o imei:o ip:o is_compliant:o is_managed:o is_personal:o is_trusted:o last_seen_time:o location:o modified_time:o name:o "
    "network_interfaces:o org:o region:R risk_level:o risk_level_id:o risk_score:o subnet:o type:R type_id:r uid:R uid_alt:o")
obj("network_endpoint", "endpoint", "autonomous_system:o intermediate_ips:o proxy_endpoint:o port:R svc_name:R type:- type_id:-")
obj("epss", "object", "created_time:R percentile:o score:r version:R")
obj("feature", "_entity", "name:- uid:- version:R")
obj("file", "_entity", "accessed_time:o accessor:o attributes:o company_name:o confidentiality:o confidentiality_id:o created_time:o creator:o "
    "desc:o ext:R hashes:R is_system:o mime_type:o modified_time:o modifier:o name:r owner:o parent_folder:o path:R product:o "
    "security_descriptor:o signature:o size:o type:o type_id:r uid:o version:o xattributes:o",
    include=["profiles/data_classification.json"], extra={"name": {"type": "file_name_t"}})
obj("finding_info", "object", "analytic:R attacks:o created_time:o data_sources:o desc:o first_seen_time:o kill_chain:o last_seen_time:o "
    "modified_time:o product_uid:o related_events:o related_analytics:o src_url:o title:r types:o uid:r")
obj("fingerprint", "object", "algorithm:o algorithm_id:r value:r", extra={"value": {"type": "file_hash_t"}})
obj("group", "_entity", "desc:o domain:o name:- privileges:o type:o uid:-")
obj("http_request", "object", "args:o http_headers:R http_method:R length:o referrer:o uid:o url:R user_agent:R version:R x_forwarded_for:o")
obj("image", "_entity", "labels:o name:- path:o tag:o uid:r")
obj("location", "object", "city:R continent:R coordinates:o country:R desc:o geohash:o is_on_premises:o isp:o lat:o long:o postal_code:o provider:o region:o")
obj("metadata", "object", "correlation_uid:o event_code:o extension:o extensions:o labels:o log_level:o log_name:R log_provider:R log_version:o "
    "logged_time:o modified_time:o loggers:o original_time:R processed_time:o product:r profiles:o sequence:o tenant_uid:R uid:o version:r",
    include=["profiles/data_classification.json"])
obj("network_connection_info", "object", "boundary:o boundary_id:R direction:o direction_id:r protocol_name:R protocol_num:R protocol_ver:o "
    "protocol_ver_id:R session:o tcp_flags:o uid:R")
obj("network_traffic", "object", "bytes:R bytes_in:o bytes_out:o packets:R packets_in:o packets_out:o chunks:o chunks_in:o chunks_out:o")
obj("organization", "_entity", "name:- ou_name:R ou_uid:o uid:-")
obj("process", "_entity", "cmd_line:R created_time:R file:R integrity:o integrity_id:o lineage:o loaded_modules:o name:- parent_process:R "
    "pid:R sandbox:o session:o terminated_time:o tid:o uid:- user:R xattributes:o",
    include=["profiles/container.json"], extra={"name": {"type": "process_name_t"}})
obj("product", "_entity", "feature:o cpe_name:o lang:o name:- path:o uid:- url_string:o vendor_name:r version:R",
    include=["profiles/data_classification.json"])
obj("remediation", "object", "desc:r references:o kb_articles:o kb_article_list:o")
obj("request", "object", "containers:o data:o flags:o uid:r")
obj("resource_details", "_resource", "agent_list:o cloud_partition:o criticality:o group:o namespace:o owner:R region:o version:o",
    extra={"cloud_partition": {"profile": "cloud"}, "region": {"profile": "cloud"}})
obj("response", "object", "code:R containers:o data:o error:R error_message:R flags:o message:R")
obj("security_state", "object", "state:o state_id:R")
obj("service", "_entity", "labels:o name:- uid:- version:R")
obj("session", "object", "count:o created_time:R credential_uid:o expiration_time:o expiration_reason:o is_remote:R is_mfa:o is_vpn:o "
    "issuer:R terminal:o uid:R uid_alt:o uuid:o")
obj("user", "_entity", "account:o credential_uid:o domain:o email_addr:o full_name:o groups:o ldap_person:o name:R org:o risk_level:o "
    "risk_level_id:o risk_score:o type:o type_id:R uid:R uid_alt:o", extra={"name": {"type": "username_t"}})
obj("vulnerability", "object", "affected_code:o affected_packages:o cve:R cwe:R desc:o first_seen_time:o fix_available:o kb_articles:o "
    "kb_article_list:o is_exploit_available:o is_fix_available:o last_seen_time:o packages:o references:R related_vulnerabilities:o "
    "remediation:o severity:o title:o vendor_name:o")

# dictionary.json: attribute -> type ("[]" suffix: is_array)
D = """access_mask integer_t|accessed_time timestamp_t|accessor user|ldap_person ldap_person|account account|action string_t|action_id integer_t|activity_id integer_t|activity_name string_t|actor actor|
affected_code affected_code[]|affected_packages affected_package[]|agent_list agent[]|algorithm string_t|algorithm_id integer_t|
analytic analytic|api api|app_name string_t|app_uid string_t|architecture string_t|args string_t|attacks attack[]|attributes integer_t|
auth_factors auth_factor[]|auth_protocol string_t|auth_protocol_id integer_t|authorizations authorization[]|autonomous_system autonomous_system|
autoscale_uid string_t|base_score float_t|boot_time timestamp_t|boundary string_t|boundary_id integer_t|bytes long_t|bytes_in long_t|
bytes_out long_t|caption string_t|category string_t|category_name string_t|category_uid integer_t|certificate certificate|chunks long_t|
chunks_in long_t|chunks_out long_t|city string_t|class_name string_t|class_uid integer_t|cloud cloud|cloud_partition string_t|cmd_line string_t|
code integer_t|comment string_t|company_name string_t|compliance compliance|compliance_references kb_article[]|compliance_standards kb_article[]|
component string_t|confidence string_t|confidence_id integer_t|confidence_score integer_t|confidentiality string_t|confidentiality_id integer_t|
connection_info network_connection_info|connection_uid string_t|container container|containers container[]|continent string_t|control string_t|
coordinates float_t[]|correlation_uid string_t|count integer_t|country string_t|cpe_name string_t|create_mask string_t|created_time timestamp_t|
creator user|credential_uid string_t|criticality string_t|cve cve|cvss cvss[]|cwe cwe|cwe_uid string_t|cwe_url url_t|data json_t|
data_classification data_classification|data_sources string_t[]|depth string_t|desc string_t|device device|direction string_t|
direction_id integer_t|disposition string_t|disposition_id integer_t|domain string_t|dst_endpoint network_endpoint|duration long_t|
email_addr email_t|end_line integer_t|end_time timestamp_t|enrichments enrichment[]|epoch integer_t|epss epss|error string_t|
error_message string_t|event_code string_t|evidences evidences[]|expiration_reason string_t|expiration_time timestamp_t|ext string_t|
extension extension|extensions extension[]|feature feature|file file|file_diff string_t|file_result file|finding_info finding_info|
firewall_rule firewall_rule|first_seen_time timestamp_t|fix_available boolean_t|fixed_in_version string_t|flags string_t[]|full_name string_t|
geohash string_t|group group|groups group[]|hash fingerprint|hashes fingerprint[]|hostname hostname_t|http_headers http_header[]|
http_method string_t|http_request http_request|hw_info device_hw_info|hypervisor string_t|idp idp|image image|imei string_t|impact string_t|
impact_id integer_t|impact_score integer_t|instance_uid string_t|integrity string_t|integrity_id integer_t|interface_name string_t|
interface_uid string_t|intermediate_ips ip_t[]|invoked_by string_t|ip ip_t|is_cleartext boolean_t|is_compliant boolean_t|
is_exploit_available boolean_t|is_fix_available boolean_t|is_managed boolean_t|is_mfa boolean_t|is_new_logon boolean_t|is_on_premises boolean_t|
is_personal boolean_t|is_remote boolean_t|is_system boolean_t|is_trusted boolean_t|is_vpn boolean_t|isp string_t|issuer string_t|
ja4_fingerprint_list ja4_fingerprint[]|kb_article_list kb_article[]|kb_articles string_t[]|kill_chain kill_chain_phase[]|labels string_t[]|
lang string_t|last_seen_time timestamp_t|lat float_t|length integer_t|license string_t|lineage string_t[]|load_balancer load_balancer|
loaded_modules string_t[]|location location|log_level string_t|log_name string_t|log_provider string_t|log_version string_t|
logged_time timestamp_t|loggers logger[]|logon_process process|logon_type string_t|logon_type_id integer_t|long float_t|mac mac_t|
malware malware[]|message string_t|metadata metadata|metrics metric[]|mime_type string_t|modified_time timestamp_t|modifier user|name string_t|
namespace string_t|namespace_pid integer_t|network_interfaces network_interface[]|number integer_t|observables observable[]|operation string_t|
org organization|original_time string_t|os os|osint osint[]|ou_name string_t|ou_uid string_t|overall_score float_t|owner user|
package_manager string_t|packages package[]|packets long_t|packets_in long_t|packets_out long_t|parent_folder string_t|parent_process process|
path string_t|percentile float_t|pid integer_t|policy policy|port port_t|postal_code string_t|prev_security_level string_t|
prev_security_level_id integer_t|prev_security_states security_state[]|privileges string_t[]|process process|processed_time timestamp_t|
product product|product_uid string_t|profiles string_t[]|project_uid string_t|protocol_name string_t|protocol_num integer_t|
protocol_ver string_t|protocol_ver_id integer_t|provider string_t|proxy network_proxy|proxy_connection_info network_connection_info|
proxy_endpoint network_proxy|proxy_http_request http_request|proxy_http_response http_response|proxy_tls tls|proxy_traffic network_traffic|
purl string_t|raw_data string_t|references string_t[]|referrer string_t|region string_t|related_analytics analytic[]|
related_events related_event[]|related_vulnerabilities string_t[]|release string_t|remediation remediation|request request|
requirements string_t[]|resource resource_details|resources resource_details[]|response response|risk_details string_t|risk_level string_t|
risk_level_id integer_t|risk_score integer_t|sandbox string_t|score string_t|security_descriptor string_t|security_level string_t|
security_level_id integer_t|security_states security_state[]|sequence integer_t|service service|session session|severity string_t|
severity_id integer_t|signature digital_signature|size long_t|src_endpoint network_endpoint|src_url url_t|standards string_t[]|
start_line integer_t|start_time timestamp_t|state string_t|state_id integer_t|status string_t|status_code string_t|status_detail string_t|
status_id integer_t|subnet subnet_t|subnet_uid string_t|svc_name string_t|tag string_t|tcp_flags integer_t|tenant_uid string_t|
terminal string_t|terminated_time timestamp_t|tid integer_t|time timestamp_t|timezone_offset integer_t|title string_t|tls tls|
traffic network_traffic|type string_t|type_id integer_t|type_name string_t|type_uid long_t|types string_t[]|uid string_t|uid_alt string_t|
unmapped object|url url|url_string url_t|user user|user_agent string_t|user_result user|uuid uuid_t|value string_t|vector_string string_t|
vendor_name string_t|version string_t|vlan_uid string_t|vpc_uid string_t|vulnerabilities vulnerability[]|x_forwarded_for ip_t[]|
xattributes object|zone string_t"""
dictionary = {}
for item in D.replace("\n", "").split("|"):
    name, t = item.split()
    entry = {"type": t.rstrip("[]")}
    if t.endswith("[]"):
        entry["is_array"] = True
    dictionary[name] = entry
types = {}
for t in "boolean_t float_t integer_t json_t long_t string_t".split():
    types[t] = {}
for t, base in [("bytestring_t", "string_t"), ("datetime_t", "string_t"), ("email_t", "string_t"), ("file_hash_t", "string_t"),
                ("file_name_t", "string_t"), ("hostname_t", "string_t"), ("ip_t", "string_t"), ("mac_t", "string_t"),
                ("port_t", "integer_t"), ("process_name_t", "string_t"), ("resource_uid_t", "string_t"), ("subnet_t", "string_t"),
                ("timestamp_t", "long_t"), ("url_t", "string_t"), ("username_t", "string_t"), ("uuid_t", "string_t")]:
    types[t] = {"type": base}
write("dictionary.json", {"attributes": dictionary, "types": {"attributes": types}})
