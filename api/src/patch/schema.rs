//! The patch metadata of the built-in kinds: which lists merge, and by which key, as the
//! `patchStrategy`/`patchMergeKey` tags of the Kubernetes Go types say.

use super::strategic::{FieldMeta, ListStrategy, MergeSchema};

/// The served kinds, by (API group, kind), and the type at the root of each.
static KINDS: &[(&str, &str, &str)] = &[
    ("", "Pod", "Pod"),
    ("", "Service", "Service"),
    ("", "Endpoints", "Endpoints"),
    ("", "Node", "Node"),
    ("", "Namespace", "Namespace"),
    ("", "ConfigMap", "ConfigMap"),
    ("", "Secret", "Secret"),
    ("", "Event", "Event"),
    ("", "ReplicationController", "ReplicationController"),
    ("apps", "Deployment", "Deployment"),
    ("apps", "ReplicaSet", "ReplicaSet"),
    ("batch", "Job", "Job"),
    ("discovery.k8s.io", "EndpointSlice", "EndpointSlice"),
    ("coordination.k8s.io", "Lease", "Lease"),
];

/// A field holding one object of type `ty`.
const fn object(ty: &'static str) -> FieldMeta<'static> {
    FieldMeta {
        ty: Some(ty),
        list: ListStrategy::Replace,
    }
}

/// A list of `element` objects merged by `key`.
const fn merged_by(key: &'static str, element: &'static str) -> FieldMeta<'static> {
    FieldMeta {
        ty: Some(element),
        list: ListStrategy::MergeByKey(key),
    }
}

/// A list of `element` objects replaced whole, listed for the types nested in its elements.
const fn atomic_list(element: &'static str) -> FieldMeta<'static> {
    object(element)
}

/// A list of scalars merged as a set.
const SET: FieldMeta<'static> = FieldMeta {
    ty: None,
    list: ListStrategy::MergeSet,
};

/// The type graph, as (type, field, how the field merges and the type of its value). Each
/// nested type (ObjectMeta, PodSpec, Container) is described once, wherever it appears.
///
/// A field missing here merges by the defaults, maps key by key and lists replaced whole, which
/// is what Kubernetes does for lists without a patch strategy: `tolerations`, `envFrom`,
/// `resizePolicy`, node `taints`, endpoints `subsets`, namespace `spec.finalizers`.
static TYPES: &[(&str, &str, FieldMeta<'static>)] = &[
    // The kinds.
    ("Pod", "metadata", object("ObjectMeta")),
    ("Pod", "spec", object("PodSpec")),
    ("Pod", "status", object("PodStatus")),
    ("Service", "metadata", object("ObjectMeta")),
    ("Service", "spec", object("ServiceSpec")),
    ("Service", "status", object("ServiceStatus")),
    ("Endpoints", "metadata", object("ObjectMeta")),
    ("Node", "metadata", object("ObjectMeta")),
    ("Node", "spec", object("NodeSpec")),
    ("Node", "status", object("NodeStatus")),
    ("Namespace", "metadata", object("ObjectMeta")),
    ("Namespace", "status", object("NamespaceStatus")),
    ("ConfigMap", "metadata", object("ObjectMeta")),
    ("Secret", "metadata", object("ObjectMeta")),
    ("Event", "metadata", object("ObjectMeta")),
    ("ReplicationController", "metadata", object("ObjectMeta")),
    ("ReplicationController", "spec", object("ReplicationControllerSpec")),
    ("ReplicationController", "status", object("ReplicationControllerStatus")),
    ("Deployment", "metadata", object("ObjectMeta")),
    ("Deployment", "spec", object("DeploymentSpec")),
    ("Deployment", "status", object("DeploymentStatus")),
    ("ReplicaSet", "metadata", object("ObjectMeta")),
    ("ReplicaSet", "spec", object("ReplicaSetSpec")),
    ("ReplicaSet", "status", object("ReplicaSetStatus")),
    ("Job", "metadata", object("ObjectMeta")),
    ("Job", "spec", object("JobSpec")),
    ("Job", "status", object("JobStatus")),
    ("EndpointSlice", "metadata", object("ObjectMeta")),
    ("Lease", "metadata", object("ObjectMeta")),
    // ObjectMeta.
    ("ObjectMeta", "finalizers", SET),
    ("ObjectMeta", "ownerReferences", merged_by("uid", "OwnerReference")),
    // Pod templates: the workloads' specs lead to a PodSpec.
    ("ReplicationControllerSpec", "template", object("PodTemplateSpec")),
    ("DeploymentSpec", "template", object("PodTemplateSpec")),
    ("ReplicaSetSpec", "template", object("PodTemplateSpec")),
    ("JobSpec", "template", object("PodTemplateSpec")),
    ("PodTemplateSpec", "metadata", object("ObjectMeta")),
    ("PodTemplateSpec", "spec", object("PodSpec")),
    // PodSpec.
    ("PodSpec", "volumes", merged_by("name", "Volume")),
    ("PodSpec", "initContainers", merged_by("name", "Container")),
    ("PodSpec", "containers", merged_by("name", "Container")),
    // EphemeralContainerCommon carries Container's patch tags, so one description serves both.
    ("PodSpec", "ephemeralContainers", merged_by("name", "Container")),
    ("PodSpec", "imagePullSecrets", merged_by("name", "LocalObjectReference")),
    ("PodSpec", "hostAliases", merged_by("ip", "HostAlias")),
    // Its list-map keys are topologyKey and whenUnsatisfiable; the patch merge key is topologyKey.
    (
        "PodSpec",
        "topologySpreadConstraints",
        merged_by("topologyKey", "TopologySpreadConstraint"),
    ),
    ("PodSpec", "schedulingGates", merged_by("name", "PodSchedulingGate")),
    ("PodSpec", "resourceClaims", merged_by("name", "PodResourceClaim")),
    // Container.
    ("Container", "ports", merged_by("containerPort", "ContainerPort")),
    ("Container", "env", merged_by("name", "EnvVar")),
    ("Container", "volumeMounts", merged_by("mountPath", "VolumeMount")),
    ("Container", "volumeDevices", merged_by("devicePath", "VolumeDevice")),
    // PodStatus.
    ("PodStatus", "conditions", merged_by("type", "PodCondition")),
    ("PodStatus", "hostIPs", merged_by("ip", "HostIP")),
    ("PodStatus", "podIPs", merged_by("ip", "PodIP")),
    (
        "PodStatus",
        "resourceClaimStatuses",
        merged_by("name", "PodResourceClaimStatus"),
    ),
    ("PodStatus", "initContainerStatuses", atomic_list("ContainerStatus")),
    ("PodStatus", "containerStatuses", atomic_list("ContainerStatus")),
    (
        "PodStatus",
        "ephemeralContainerStatuses",
        atomic_list("ContainerStatus"),
    ),
    (
        "ContainerStatus",
        "volumeMounts",
        merged_by("mountPath", "VolumeMountStatus"),
    ),
    (
        "ContainerStatus",
        "allocatedResourcesStatus",
        merged_by("name", "ResourceStatus"),
    ),
    // Services, nodes, namespaces.
    // Its list-map keys are port and protocol; the patch merge key is port.
    ("ServiceSpec", "ports", merged_by("port", "ServicePort")),
    ("ServiceStatus", "conditions", merged_by("type", "Condition")),
    ("NodeSpec", "podCIDRs", SET),
    ("NodeStatus", "conditions", merged_by("type", "NodeCondition")),
    ("NodeStatus", "addresses", merged_by("type", "NodeAddress")),
    ("NamespaceStatus", "conditions", merged_by("type", "NamespaceCondition")),
    // Workload status.
    (
        "ReplicationControllerStatus",
        "conditions",
        merged_by("type", "ReplicationControllerCondition"),
    ),
    (
        "DeploymentStatus",
        "conditions",
        merged_by("type", "DeploymentCondition"),
    ),
    (
        "ReplicaSetStatus",
        "conditions",
        merged_by("type", "ReplicaSetCondition"),
    ),
    ("JobStatus", "conditions", merged_by("type", "JobCondition")),
];

/// The patch metadata of the built-in kinds, from the static tables of this module.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinSchema;

impl BuiltinSchema {
    /// The schema type at the root of objects of `kind` in API `group` (`""` for the core
    /// group), or `None` for a kind that is not built in.
    pub fn root_type(group: &str, kind: &str) -> Option<&'static str> {
        KINDS
            .iter()
            .find(|(g, k, _)| *g == group && *k == kind)
            .map(|(_, _, ty)| *ty)
    }
}

impl MergeSchema for BuiltinSchema {
    fn field(&self, ty: &str, field: &str) -> Option<FieldMeta<'_>> {
        TYPES
            .iter()
            .find(|(t, f, _)| *t == ty && *f == field)
            .map(|(_, _, meta)| *meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How the field at `path` (field names from the object root) of `kind` merges.
    fn lookup(group: &str, kind: &str, path: &[&str]) -> Option<FieldMeta<'static>> {
        let schema: &'static BuiltinSchema = &BuiltinSchema;
        let mut ty = BuiltinSchema::root_type(group, kind);
        let mut meta = None;
        for field in path {
            meta = schema.field(ty?, field);
            ty = meta.and_then(|meta| meta.ty);
        }
        meta
    }

    fn list_of(group: &str, kind: &str, path: &str) -> Option<ListStrategy<'static>> {
        let path: Vec<&str> = path.split('.').collect();
        lookup(group, kind, &path).map(|meta| meta.list)
    }

    #[test]
    fn every_served_kind_has_a_root_type_with_object_meta() {
        for (group, kind, _) in KINDS {
            assert_eq!(
                list_of(group, kind, "metadata.finalizers"),
                Some(ListStrategy::MergeSet),
                "{group}/{kind}"
            );
        }
        assert_eq!(BuiltinSchema::root_type("example.com", "Pod"), None);
        assert_eq!(BuiltinSchema::root_type("", "Deployment"), None);
    }

    #[test]
    fn pod_templates_of_every_workload_share_the_pod_spec_table() {
        let containers = Some(ListStrategy::MergeByKey("name"));
        assert_eq!(list_of("", "Pod", "spec.containers"), containers);
        for (group, kind) in [
            ("apps", "Deployment"),
            ("apps", "ReplicaSet"),
            ("", "ReplicationController"),
            ("batch", "Job"),
        ] {
            assert_eq!(
                list_of(group, kind, "spec.template.spec.containers"),
                containers,
                "{kind}"
            );
            assert_eq!(
                list_of(group, kind, "spec.template.spec.initContainers.env"),
                Some(ListStrategy::MergeByKey("name")),
                "{kind}"
            );
            assert_eq!(
                list_of(group, kind, "spec.template.metadata.ownerReferences"),
                Some(ListStrategy::MergeByKey("uid")),
                "{kind}"
            );
        }
    }

    #[test]
    fn merge_keys_follow_the_kubernetes_tags() {
        let cases = [
            ("", "Pod", "spec.volumes", "name"),
            ("", "Pod", "spec.ephemeralContainers.volumeMounts", "mountPath"),
            ("", "Pod", "spec.imagePullSecrets", "name"),
            ("", "Pod", "spec.hostAliases", "ip"),
            ("", "Pod", "spec.topologySpreadConstraints", "topologyKey"),
            ("", "Pod", "spec.containers.ports", "containerPort"),
            ("", "Pod", "spec.containers.volumeDevices", "devicePath"),
            ("", "Pod", "status.conditions", "type"),
            ("", "Pod", "status.podIPs", "ip"),
            ("", "Service", "spec.ports", "port"),
            ("", "Node", "status.conditions", "type"),
            ("", "Node", "status.addresses", "type"),
            ("apps", "Deployment", "status.conditions", "type"),
            ("apps", "ReplicaSet", "status.conditions", "type"),
            ("batch", "Job", "status.conditions", "type"),
        ];
        for (group, kind, path, key) in cases {
            assert_eq!(
                list_of(group, kind, path),
                Some(ListStrategy::MergeByKey(key)),
                "{kind} {path}"
            );
        }
        assert_eq!(list_of("", "Node", "spec.podCIDRs"), Some(ListStrategy::MergeSet));
    }

    #[test]
    fn lists_without_a_patch_strategy_are_not_merged() {
        for (kind, path) in [
            ("Pod", "spec.tolerations"),
            ("Pod", "spec.containers.envFrom"),
            ("Pod", "spec.containers.resizePolicy"),
            ("Node", "spec.taints"),
            ("Endpoints", "subsets"),
            ("Namespace", "spec.finalizers"),
        ] {
            assert_eq!(list_of("", kind, path), None, "{kind} {path}");
        }
        assert_eq!(
            list_of("", "Pod", "status.containerStatuses"),
            Some(ListStrategy::Replace)
        );
    }

    #[test]
    fn no_field_is_described_twice() {
        for (index, (ty, field, _)) in TYPES.iter().enumerate() {
            assert!(
                !TYPES[index + 1..].iter().any(|(t, f, _)| t == ty && f == field),
                "{ty}.{field} appears twice"
            );
        }
    }
}
