//! Shapes on the sphere as MongoDB's S2 reads GeoJSON: every edge of a
//! LineString or Polygon is the shorter great-circle arc between its
//! vertices (not a straight segment on a longitude/latitude map), and a
//! polygon's ring bounds the smaller of the two regions it cuts the sphere
//! into, unless the query names MongoDB's strict-winding CRS (a "big
//! polygon": the region on the left of the ring, whatever its size).
//!
//! georust `geo` measures on the sphere (haversine distances, closest
//! points) but has no spherical containment or intersection predicates, so
//! this module is that glue: points as unit vectors, a crossing test for
//! two arcs, and point-in-ring by the parity of the crossings on the arc to
//! a reference point whose side is known. Property tests compare it with
//! `geo`'s planar predicates where both must agree, and with itself under
//! rotations of the sphere.
use geo::{Coord, Geometry, LineString, Point, Polygon, Rect};

/// A point of the unit sphere.
pub type V3 = [f64; 3];

/// Points within this angle (radians: 0.6 µm on MongoDB's earth) of a
/// ring or a line are on it.
const ON_EDGE: f64 = 1e-13;

/// The unit vector of a (longitude, latitude) pair in degrees.
pub fn to_v3(c: Coord<f64>) -> V3 {
    let (lat, lng) = (c.y.to_radians(), c.x.to_radians());
    [lat.cos() * lng.cos(), lat.cos() * lng.sin(), lat.sin()]
}

fn cross(a: V3, b: V3) -> V3 {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn norm(a: V3) -> f64 {
    dot(a, a).sqrt()
}

fn scaled(a: V3, k: f64) -> V3 {
    [a[0] * k, a[1] * k, a[2] * k]
}

fn sum(a: V3, b: V3) -> V3 {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// `a` scaled to unit length (`None` for the zero vector).
fn unit(a: V3) -> Option<V3> {
    let n = norm(a);
    (n > 1e-300 && n.is_finite()).then(|| scaled(a, 1.0 / n))
}

/// The angle between two unit vectors, accurate for small angles too.
fn angle(a: V3, b: V3) -> f64 {
    norm(cross(a, b)).atan2(dot(a, b))
}

/// The angle from `p` to the shorter arc from `a` to `b`.
fn distance_to_arc(p: V3, a: V3, b: V3) -> f64 {
    let n = cross(a, b);
    let len = norm(n);
    if len > 1e-300 && dot(cross(a, p), n) > 0.0 && dot(cross(p, b), n) > 0.0 {
        // `p` projects inside the arc: its distance is to the great circle.
        return (dot(p, n) / len).clamp(-1.0, 1.0).asin().abs();
    }
    angle(p, a).min(angle(p, b))
}

/// Whether the arcs ab and cd cross at a point inside both: the four
/// triangles ACB, CBD, BDA and DAC turn the same way.
fn arcs_cross(a: V3, b: V3, c: V3, d: V3) -> bool {
    let ab = cross(a, b);
    let acb = -dot(ab, c);
    let bda = dot(ab, d);
    if acb * bda <= 0.0 {
        return false;
    }
    let cd = cross(c, d);
    let cbd = -dot(cd, b);
    let dac = dot(cd, a);
    acb * cbd > 0.0 && acb * dac > 0.0
}

/// Whether the arcs ab and cd have a point in common.
fn arcs_meet(a: V3, b: V3, c: V3, d: V3) -> bool {
    arcs_cross(a, b, c, d)
        || distance_to_arc(a, c, d) < ON_EDGE
        || distance_to_arc(b, c, d) < ON_EDGE
        || distance_to_arc(c, a, b) < ON_EDGE
        || distance_to_arc(d, a, b) < ON_EDGE
}

/// The vertices of a line or ring as unit vectors, without repeats of the
/// same point in a row (nor the closing repeat of a ring).
fn vertices(line: &LineString<f64>) -> Vec<V3> {
    let mut out: Vec<V3> = Vec::with_capacity(line.0.len());
    for c in &line.0 {
        let v = to_v3(*c);
        if out.last().is_none_or(|last| angle(*last, v) > 0.0) {
            out.push(v);
        }
    }
    if out.len() > 1 && out.first().zip(out.last()).is_some_and(|(f, l)| angle(*f, *l) == 0.0) {
        out.pop();
    }
    out
}

/// Where a point lies with respect to a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Inside,
    Boundary,
    Outside,
}

/// A closed ring of great-circle edges and the side of it that is inside.
#[derive(Debug, Clone)]
pub struct Ring {
    v: Vec<V3>,
    /// A point off the ring, and whether it is inside.
    reference: V3,
    reference_inside: bool,
}

impl Ring {
    /// The ring through `line`'s vertices: bounding the smaller side, or
    /// with `strict`, the side on its left (counterclockwise walk). `None`
    /// when it has fewer than three distinct vertices or no edge from
    /// which to place a reference point (a degenerate ring).
    pub fn new(line: &LineString<f64>, strict: bool) -> Option<Ring> {
        let v = vertices(line);
        if v.len() < 3 {
            return None;
        }
        let left_inside = strict || turning(&v) >= 0.0;
        let reference = left_reference(&v)?;
        Some(Ring { v, reference, reference_inside: left_inside })
    }

    fn edges(&self) -> impl Iterator<Item = (V3, V3)> + '_ {
        let n = self.v.len();
        (0..n).map(move |i| (self.v[i], self.v[(i + 1) % n]))
    }

    pub fn locate(&self, p: V3) -> Location {
        if self.edges().any(|(a, b)| distance_to_arc(p, a, b) < ON_EDGE) {
            return Location::Boundary;
        }
        // The arc from `p` to the reference point is undefined when they
        // are antipodal: go through a point a quarter turn away.
        let path: Vec<V3> = if dot(p, self.reference) < -0.5 {
            let detour = unit(cross(p, self.reference)).or_else(|| unit(cross(p, [0.0, 0.0, 1.0]))).or_else(|| unit(cross(p, [1.0, 0.0, 0.0])));
            match detour {
                Some(m) => vec![p, m, self.reference],
                None => vec![p, self.reference],
            }
        } else {
            vec![p, self.reference]
        };
        let crossings: usize = path.windows(2).map(|w| self.edges().filter(|(a, b)| arcs_cross(w[0], w[1], *a, *b)).count()).sum();
        if self.reference_inside != (crossings % 2 == 1) {
            Location::Inside
        } else {
            Location::Outside
        }
    }
}

/// The sum of the ring's turning angles (left turns positive). By
/// Gauss-Bonnet the region on the left of a simple ring has area
/// 2π − sum, so a positive sum means the left side is the smaller one.
fn turning(v: &[V3]) -> f64 {
    let n = v.len();
    (0..n)
        .map(|i| {
            let (a, b, c) = (v[(i + n - 1) % n], v[i], v[(i + 1) % n]);
            let arriving = cross(cross(a, b), b);
            let leaving = cross(cross(b, c), b);
            dot(b, cross(arriving, leaving)).atan2(dot(arriving, leaving))
        })
        .sum()
}

/// A point just left of one of the ring's edges: nearer that edge's
/// midpoint than any other edge is, so on the left region's side.
fn left_reference(v: &[V3]) -> Option<V3> {
    let n = v.len();
    for i in 0..n {
        let (a, b) = (v[i], v[(i + 1) % n]);
        let (Some(mid), Some(left)) = (unit(sum(a, b)), unit(cross(a, b))) else { continue };
        let clearance = (0..n)
            .filter(|&j| j != i)
            .map(|j| distance_to_arc(mid, v[j], v[(j + 1) % n]))
            .fold(f64::INFINITY, f64::min)
            .min(angle(mid, a));
        if clearance > 1e-12 {
            return unit(sum(mid, scaled(left, (clearance / 4.0).min(1e-6))));
        }
    }
    None
}

/// A polygon on the sphere: a shell and holes (each hole the smaller side
/// of its ring, as MongoDB normalizes them).
#[derive(Debug, Clone)]
pub struct SphericalPolygon {
    shell: Ring,
    holes: Vec<Ring>,
}

impl SphericalPolygon {
    pub fn new(p: &Polygon<f64>, strict: bool) -> Option<SphericalPolygon> {
        let shell = Ring::new(p.exterior(), strict)?;
        let holes = p.interiors().iter().filter_map(|h| Ring::new(h, false)).collect();
        Some(SphericalPolygon { shell, holes })
    }

    pub fn locate(&self, p: V3) -> Location {
        match self.shell.locate(p) {
            Location::Inside => {}
            other => return other,
        }
        for hole in &self.holes {
            match hole.locate(p) {
                Location::Inside => return Location::Outside,
                Location::Boundary => return Location::Boundary,
                Location::Outside => {}
            }
        }
        Location::Inside
    }

    fn rings(&self) -> impl Iterator<Item = &Ring> {
        std::iter::once(&self.shell).chain(self.holes.iter())
    }

    fn edges(&self) -> impl Iterator<Item = (V3, V3)> + '_ {
        self.rings().flat_map(Ring::edges)
    }
}

/// A geometry taken apart into what the predicates compare: points,
/// lines (vertex chains) and polygons.
#[derive(Debug, Clone, Default)]
pub struct SphericalShape {
    points: Vec<V3>,
    lines: Vec<Vec<V3>>,
    polygons: Vec<SphericalPolygon>,
}

impl SphericalShape {
    /// `g` on the sphere; `strict` reads its polygons' rings with MongoDB's
    /// strict winding (a query's big polygon).
    pub fn new(g: &Geometry<f64>, strict: bool) -> SphericalShape {
        let mut shape = SphericalShape::default();
        shape.add(g, strict);
        shape
    }

    fn add(&mut self, g: &Geometry<f64>, strict: bool) {
        match g {
            Geometry::Point(p) => self.points.push(to_v3(p.0)),
            Geometry::MultiPoint(ps) => self.points.extend(ps.iter().map(|p| to_v3(p.0))),
            Geometry::Line(l) => self.add_line(&LineString(vec![l.start, l.end])),
            Geometry::LineString(l) => self.add_line(l),
            Geometry::MultiLineString(ls) => ls.iter().for_each(|l| self.add_line(l)),
            Geometry::Polygon(p) => self.add_polygon(p, strict),
            Geometry::MultiPolygon(ps) => ps.iter().for_each(|p| self.add_polygon(p, strict)),
            Geometry::Rect(r) => self.add_polygon(&r.to_polygon(), strict),
            Geometry::Triangle(t) => self.add_polygon(&t.to_polygon(), strict),
            // Collections are nested no deeper than the GeoJSON parser allows.
            Geometry::GeometryCollection(items) => items.iter().for_each(|i| self.add(i, strict)),
        }
    }

    fn add_line(&mut self, l: &LineString<f64>) {
        match vertices(l).as_slice() {
            [] => {}
            [only] => self.points.push(*only),
            many => self.lines.push(many.to_vec()),
        }
    }

    fn add_polygon(&mut self, p: &Polygon<f64>, strict: bool) {
        match SphericalPolygon::new(p, strict) {
            Some(poly) => self.polygons.push(poly),
            // A ring with no area is its outline.
            None => self.add_line(p.exterior()),
        }
    }

    /// Whether the two shapes have a point in common.
    pub fn intersects(&self, other: &SphericalShape) -> bool {
        let arcs = |lines: &[Vec<V3>]| -> Vec<(V3, V3)> { lines.iter().flat_map(|l| l.windows(2).map(|w| (w[0], w[1]))).collect() };
        let (my_arcs, their_arcs) = (arcs(&self.lines), arcs(&other.lines));
        let point_meets = |p: V3, arcs: &[(V3, V3)], points: &[V3], polygons: &[SphericalPolygon]| {
            points.iter().any(|q| angle(p, *q) < ON_EDGE)
                || arcs.iter().any(|(a, b)| distance_to_arc(p, *a, *b) < ON_EDGE)
                || polygons.iter().any(|poly| poly.locate(p) != Location::Outside)
        };
        if self.points.iter().any(|p| point_meets(*p, &their_arcs, &other.points, &other.polygons))
            || other.points.iter().any(|p| point_meets(*p, &my_arcs, &[], &self.polygons))
        {
            return true;
        }
        let arc_meets_polygon = |(a, b): (V3, V3), poly: &SphericalPolygon| {
            poly.locate(a) != Location::Outside || poly.edges().any(|(c, d)| arcs_meet(a, b, c, d))
        };
        if my_arcs.iter().any(|(a, b)| their_arcs.iter().any(|(c, d)| arcs_meet(*a, *b, *c, *d)))
            || my_arcs.iter().any(|arc| other.polygons.iter().any(|poly| arc_meets_polygon(*arc, poly)))
            || their_arcs.iter().any(|arc| self.polygons.iter().any(|poly| arc_meets_polygon(*arc, poly)))
        {
            return true;
        }
        self.polygons.iter().any(|p| other.polygons.iter().any(|q| polygons_meet(p, q)))
    }

    /// Whether the shape lies in `region`, boundary included: each of its
    /// parts inside one of the region's polygons.
    pub fn within(&self, region: &[SphericalPolygon]) -> bool {
        let has_parts = !(self.points.is_empty() && self.lines.is_empty() && self.polygons.is_empty());
        has_parts
            && self.points.iter().all(|p| region.iter().any(|r| r.locate(*p) != Location::Outside))
            && self.lines.iter().all(|l| region.iter().any(|r| chain_within(l, false, r)))
            && self.polygons.iter().all(|poly| region.iter().any(|r| polygon_within(poly, r)))
    }
}

/// Whether a vertex chain (closed when `ring`) lies in `region`: no vertex
/// nor edge midpoint outside, and no edge crossing the region's outline.
fn chain_within(v: &[V3], ring: bool, region: &SphericalPolygon) -> bool {
    let n = v.len();
    let edges = (0..if ring { n } else { n.saturating_sub(1) }).map(|i| (v[i], v[(i + 1) % n]));
    v.iter().all(|p| region.locate(*p) != Location::Outside)
        && edges.clone().all(|(a, b)| unit(sum(a, b)).is_none_or(|m| region.locate(m) != Location::Outside))
        && edges.clone().all(|(a, b)| region.edges().all(|(c, d)| !arcs_cross(a, b, c, d)))
}

/// Whether polygon `p` lies in `region`: its shell does, and none of the
/// region's holes opens inside it.
fn polygon_within(p: &SphericalPolygon, region: &SphericalPolygon) -> bool {
    chain_within(&p.shell.v, true, region) && region.holes.iter().all(|h| h.v.iter().all(|x| p.locate(*x) != Location::Inside))
}

fn polygons_meet(p: &SphericalPolygon, q: &SphericalPolygon) -> bool {
    p.edges().any(|(a, b)| q.edges().any(|(c, d)| arcs_meet(a, b, c, d)))
        || p.shell.v.first().is_some_and(|v| q.locate(*v) != Location::Outside)
        || q.shell.v.first().is_some_and(|v| p.locate(*v) != Location::Outside)
}

/// The latitude range (degrees) the shorter arc from `a` to `b` spans:
/// a great circle rises above its end points toward a pole.
fn arc_latitudes(a: V3, b: V3) -> (f64, f64) {
    let lat = |v: V3| v[2].clamp(-1.0, 1.0).asin().to_degrees();
    let (mut lo, mut hi) = (lat(a).min(lat(b)), lat(a).max(lat(b)));
    if let Some(n) = unit(cross(a, b)) {
        // The circle's highest point is the pole's direction projected on
        // its plane; it counts when it falls inside the arc.
        if let Some(top) = unit(sum([0.0, 0.0, 1.0], scaled(n, -n[2]))) {
            for extreme in [top, scaled(top, -1.0)] {
                if dot(cross(a, extreme), cross(a, b)) > 0.0 && dot(cross(extreme, b), cross(a, b)) > 0.0 {
                    lo = lo.min(lat(extreme));
                    hi = hi.max(lat(extreme));
                }
            }
        }
    }
    (lo, hi)
}

/// A (lng, lat) box holding every point of `g` on the sphere: its edges'
/// bulges toward the poles included, the whole longitude range when an
/// edge crosses the antimeridian or a polygon holds a pole. `None` for a
/// strict-winding (big) polygon, which may cover any part of the sphere.
pub fn bounding_box(g: &Geometry<f64>, strict: bool) -> Option<Rect<f64>> {
    use geo::CoordsIter;
    if strict && matches!(g, Geometry::Polygon(_) | Geometry::MultiPolygon(_)) {
        return None;
    }
    let shape = SphericalShape::new(g, false);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for c in g.coords_iter() {
        x0 = x0.min(c.x);
        x1 = x1.max(c.x);
        y0 = y0.min(c.y);
        y1 = y1.max(c.y);
    }
    if !(x0.is_finite() && x1.is_finite() && y0.is_finite() && y1.is_finite()) {
        return None;
    }
    let mut whole_longitudes = false;
    let chains = shape.lines.iter().map(|l| (l.as_slice(), false)).chain(shape.polygons.iter().flat_map(|p| p.rings().map(|r| (r.v.as_slice(), true))));
    for (v, ring) in chains {
        let n = v.len();
        for i in 0..if ring { n } else { n.saturating_sub(1) } {
            let (a, b) = (v[i], v[(i + 1) % n]);
            let (lo, hi) = arc_latitudes(a, b);
            y0 = y0.min(lo);
            y1 = y1.max(hi);
            // An arc spanning more than 180° of longitude goes the other way round.
            let lng = |p: V3| p[1].atan2(p[0]).to_degrees();
            if (lng(a) - lng(b)).abs() > 180.0 {
                whole_longitudes = true;
            }
        }
    }
    for poly in &shape.polygons {
        if poly.locate([0.0, 0.0, 1.0]) != Location::Outside {
            y1 = 90.0;
            whole_longitudes = true;
        }
        if poly.locate([0.0, 0.0, -1.0]) != Location::Outside {
            y0 = -90.0;
            whole_longitudes = true;
        }
    }
    if whole_longitudes {
        (x0, x1) = (-180.0, 180.0);
    }
    Some(Rect::new(Coord { x: x0, y: y0.max(-90.0) }, Coord { x: x1, y: y1.min(90.0) }))
}

/// Why a polygon is not valid on the sphere, as S2 would refuse it: an
/// edge between antipodal vertices (no unique arc), two edges of its rings
/// meeting other than end to end, a hole not inside the shell, or a hole
/// inside another hole. `None` when it is valid.
pub fn polygon_problem(p: &Polygon<f64>) -> Option<String> {
    let rings: Vec<Vec<V3>> = std::iter::once(p.exterior()).chain(p.interiors()).map(vertices).collect();
    // Each edge: its ring, its index in the ring, its ends, its latitude span.
    let mut edges: Vec<(usize, usize, V3, V3, f64, f64)> = Vec::new();
    for (r, v) in rings.iter().enumerate() {
        let n = v.len();
        for i in 0..n {
            let (a, b) = (v[i], v[(i + 1) % n]);
            if angle(a, b) > std::f64::consts::PI - 1e-9 {
                return Some(format!("Edge {i} has antipodal vertices"));
            }
            let (lo, hi) = arc_latitudes(a, b);
            edges.push((r, i, a, b, lo, hi));
        }
    }
    // Only edges whose latitude spans overlap can meet: sweep them in
    // order of their lowest latitude.
    edges.sort_by(|x, y| x.4.total_cmp(&y.4));
    for (k, &(r1, i, a, b, _, hi)) in edges.iter().enumerate() {
        for &(r2, j, c, d, lo2, _) in &edges[k + 1..] {
            if lo2 > hi + 1e-9 {
                break;
            }
            let n = rings[r1].len();
            let adjacent = r1 == r2 && (j == (i + 1) % n || i == (j + 1) % n);
            let meet = if adjacent {
                // Neighbours share a vertex; they must not fold back onto
                // each other.
                let (shared, far1, far2) = if j == (i + 1) % n { (b, a, d) } else { (a, b, c) };
                angle(shared, far1) > 0.0 && angle(shared, far2) > 0.0 && angle(unit_tangent(shared, far1), unit_tangent(shared, far2)) < 1e-12
            } else {
                arcs_meet(a, b, c, d)
            };
            if meet {
                return Some(if r1 == r2 {
                    format!("Edges {} and {} cross", i.min(j), i.max(j))
                } else {
                    "Secondary loops not contained by first exterior loop - secondary loops must be holes".to_string()
                });
            }
        }
    }
    let shell = Ring::new(p.exterior(), false)?;
    let holes: Vec<Ring> = p.interiors().iter().filter_map(|h| Ring::new(h, false)).collect();
    for (k, hole) in holes.iter().enumerate() {
        if hole.v.iter().any(|x| shell.locate(*x) == Location::Outside) {
            return Some("Secondary loops not contained by first exterior loop - secondary loops must be holes".to_string());
        }
        if holes.iter().enumerate().any(|(m, other)| m != k && hole.v.iter().all(|x| other.locate(*x) != Location::Outside)) {
            return Some("Polygon interior loops cannot be nested".to_string());
        }
    }
    None
}

/// The direction from `from` toward `to` along their arc.
fn unit_tangent(from: V3, to: V3) -> V3 {
    let n = cross(from, to);
    unit(cross(n, from)).unwrap_or(n)
}

/// Whether `p` lies in or on one of `polygons` (for distances to a shape
/// that holds the query point).
pub fn point_in_polygons(p: Point<f64>, polygons: &[SphericalPolygon]) -> bool {
    let v = to_v3(p.0);
    polygons.iter().any(|poly| poly.locate(v) != Location::Outside)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{coord, line_string, polygon, Contains, Intersects};
    use proptest::prelude::*;

    fn shape(g: impl Into<Geometry<f64>>) -> SphericalShape {
        SphericalShape::new(&g.into(), false)
    }

    fn region(p: Polygon<f64>) -> Vec<SphericalPolygon> {
        vec![SphericalPolygon::new(&p, false).unwrap()]
    }

    #[test]
    fn a_long_east_west_edge_bulges_toward_the_pole() {
        // Along the parallel 60°N a straight map edge from 60°W to 60°E; the
        // great circle between them reaches about 73.9°N at 0°.
        let band = polygon![(x: -60.0, y: 50.0), (x: 60.0, y: 50.0), (x: 60.0, y: 60.0), (x: -60.0, y: 60.0), (x: -60.0, y: 50.0)];
        let r = region(band.clone());
        let north_of_parallel = Point::new(0.0, 70.0);
        assert!(!band.contains(&north_of_parallel), "planar: outside");
        assert!(shape(north_of_parallel).within(&r), "spherical: inside, under the arc");
        assert!(!shape(Point::new(0.0, 75.0)).within(&r));
        // The southern edge bulges north too: a point just above 50°N at 0°
        // is south of the arc, outside.
        assert!(band.contains(&Point::new(0.0, 51.0)));
        assert!(!shape(Point::new(0.0, 51.0)).within(&r));
        let (_, top) = arc_latitudes(to_v3(coord! {x: -60.0, y: 60.0}), to_v3(coord! {x: 60.0, y: 60.0}));
        assert!((top - 73.897_9).abs() < 1e-3, "{top}");
    }

    #[test]
    fn a_polygon_across_the_antimeridian_is_the_small_one() {
        let across = polygon![(x: 170.0, y: -10.0), (x: -170.0, y: -10.0), (x: -170.0, y: 10.0), (x: 170.0, y: 10.0), (x: 170.0, y: -10.0)];
        let r = region(across.clone());
        assert!(shape(Point::new(180.0, 0.0)).within(&r));
        assert!(shape(Point::new(-175.0, 5.0)).within(&r));
        assert!(!shape(Point::new(0.0, 0.0)).within(&r));
        assert!(across.contains(&Point::new(0.0, 0.0)), "planar reads the rest of the world");
        let b = bounding_box(&Geometry::Polygon(across), false).unwrap();
        assert_eq!((b.min().x, b.max().x), (-180.0, 180.0));
    }

    #[test]
    fn a_ring_around_a_pole_holds_the_pole() {
        let ring: Vec<(f64, f64)> = (0..=12).map(|i| (-180.0 + 30.0 * f64::from(i % 12), 80.0)).collect();
        let cap = Polygon::new(LineString::from(ring), vec![]);
        let r = region(cap.clone());
        assert!(shape(Point::new(45.0, 89.0)).within(&r));
        assert!(shape(Point::new(0.0, 90.0)).within(&r));
        assert!(!shape(Point::new(0.0, 70.0)).within(&r));
        // Clockwise, the same ring still means the small cap (MongoDB
        // normalizes), unless it is a strict-winding big polygon.
        let reversed = Polygon::new(LineString::from(cap.exterior().0.iter().rev().copied().collect::<Vec<_>>()), vec![]);
        assert!(shape(Point::new(45.0, 89.0)).within(&region(reversed.clone())));
        let big = vec![SphericalPolygon::new(&reversed, true).unwrap()];
        assert!(!shape(Point::new(45.0, 89.0)).within(&big));
        assert!(shape(Point::new(0.0, 0.0)).within(&big));
        let b = bounding_box(&Geometry::Polygon(cap), false).unwrap();
        assert_eq!((b.min().x, b.max().x, b.max().y), (-180.0, 180.0, 90.0));
    }

    #[test]
    fn lines_and_polygons_meet_on_the_sphere() {
        let r = polygon![(x: 0.0, y: 0.0), (x: 10.0, y: 0.0), (x: 10.0, y: 10.0), (x: 0.0, y: 10.0), (x: 0.0, y: 0.0)];
        let inside = line_string![(x: 2.0, y: 2.0), (x: 8.0, y: 8.0)];
        let through = line_string![(x: -5.0, y: 5.0), (x: 15.0, y: 5.0)];
        let away = line_string![(x: 20.0, y: 20.0), (x: 30.0, y: 20.0)];
        assert!(shape(inside.clone()).within(&region(r.clone())));
        assert!(!shape(through.clone()).within(&region(r.clone())));
        assert!(shape(through).intersects(&shape(r.clone())));
        assert!(!shape(away.clone()).intersects(&shape(r.clone())));
        assert!(shape(inside).intersects(&shape(r.clone())));
        // Two lines crossing, and one touching another's end.
        let x = shape(line_string![(x: 0.0, y: 0.0), (x: 10.0, y: 10.0)]);
        assert!(x.intersects(&shape(line_string![(x: 0.0, y: 10.0), (x: 10.0, y: 0.0)])));
        assert!(x.intersects(&shape(line_string![(x: 10.0, y: 10.0), (x: 20.0, y: 0.0)])));
        assert!(!x.intersects(&away_shape()));
        // A polygon inside another, and one in its hole.
        let small = polygon![(x: 4.0, y: 4.0), (x: 6.0, y: 4.0), (x: 6.0, y: 6.0), (x: 4.0, y: 6.0), (x: 4.0, y: 4.0)];
        assert!(shape(small.clone()).within(&region(r.clone())));
        assert!(shape(small.clone()).intersects(&shape(r.clone())));
        let holed = Polygon::new(r.exterior().clone(), vec![LineString::from(vec![(3.0, 3.0), (7.0, 3.0), (7.0, 7.0), (3.0, 7.0), (3.0, 3.0)])]);
        assert!(!shape(small.clone()).intersects(&shape(holed.clone())));
        assert!(!shape(small).within(&region(holed.clone())));
        assert!(!shape(r).within(&region(holed)), "a hole of the region opens inside it");
    }

    fn away_shape() -> SphericalShape {
        shape(line_string![(x: 20.0, y: 20.0), (x: 30.0, y: 20.0)])
    }

    /// Rotating the sphere about its axis moves every shape alike.
    fn rotated(p: Polygon<f64>, dx: f64) -> Polygon<f64> {
        use geo::MapCoords;
        p.map_coords(|c| coord! {x: wrap(c.x + dx), y: c.y})
    }

    fn wrap(x: f64) -> f64 {
        let y = (x + 180.0).rem_euclid(360.0) - 180.0;
        if y == -180.0 && x > 0.0 {
            180.0
        } else {
            y
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Small shapes near the equator: spherical and planar answers
        /// agree away from the edges (where the arcs and the straight
        /// edges are within a hair of each other).
        #[test]
        fn small_triangles_agree_with_planar(
            ax in -1.0f64..1.0, ay in -1.0f64..1.0, bx in -1.0f64..1.0, by in -1.0f64..1.0,
            cx in -1.0f64..1.0, cy in -1.0f64..1.0, px in -1.0f64..1.0, py in -1.0f64..1.0,
        ) {
            let t = polygon![(x: ax, y: ay), (x: bx, y: by), (x: cx, y: cy), (x: ax, y: ay)];
            let area = ((bx - ax) * (cy - ay) - (cx - ax) * (by - ay)).abs() / 2.0;
            prop_assume!(area > 1e-3);
            let p = Point::new(px, py);
            use geo::{Distance, Euclidean};
            let margin = Euclidean.distance(&p, t.exterior());
            prop_assume!(margin > 1e-3);
            let r = region(t.clone());
            prop_assert_eq!(shape(p).within(&r), t.contains(&p));
            prop_assert_eq!(shape(p).intersects(&shape(t.clone())), t.intersects(&p));
        }

        /// Whether a point is in a polygon does not depend on where the
        /// antimeridian falls: rotate both about the axis and ask again.
        #[test]
        fn rotation_about_the_axis_changes_nothing(
            cx in -180.0f64..180.0, cy in -80.0f64..80.0, size in 0.5f64..40.0,
            px in -180.0f64..180.0, py in -89.0f64..89.0, dx in -360.0f64..360.0,
        ) {
            let (x0, x1) = (cx - size, cx + size);
            let (y0, y1) = ((cy - size / 2.0).max(-89.0), (cy + size / 2.0).min(89.0));
            let square = polygon![(x: x0, y: y0), (x: x1, y: y0), (x: x1, y: y1), (x: x0, y: y1), (x: x0, y: y0)];
            let square = rotated(square, 0.0);
            let p = Point::new(px, py);
            let here = region(square.clone());
            let there = region(rotated(square, dx));
            let moved = Point::new(wrap(px + dx), py);
            let (a, b) = (here[0].locate(to_v3(p.0)), there[0].locate(to_v3(moved.0)));
            // A point within a hair of an edge may fall either way after
            // the rotation's rounding.
            if a != Location::Boundary && b != Location::Boundary {
                prop_assert_eq!(a, b);
            }
        }

        /// A point and its antipode are never both inside a polygon (each
        /// ring bounds at most a hemisphere), and the polygon's centre is
        /// inside it: star-shaped polygons of any size and place, walked
        /// either way round.
        #[test]
        fn a_polygon_holds_its_centre_and_never_a_point_and_its_antipode(
            cx in -180.0f64..180.0, cy in -89.0f64..89.0, radius in 0.01f64..1.5,
            jitter in proptest::collection::vec(0.0f64..0.5, 3..9),
            clockwise in proptest::bool::ANY,
            px in -180.0f64..180.0, py in -89.0f64..89.0,
        ) {
            use geo::{Destination, Haversine};
            let n = jitter.len() as f64;
            let centre = Point::new(cx, cy);
            let mut ring: Vec<Coord<f64>> = jitter
                .iter()
                .enumerate()
                .map(|(i, j)| Haversine.destination(centre, (i as f64 + j) * 360.0 / n, radius * 6_371_008.8).0)
                .collect();
            if clockwise {
                ring.reverse();
            }
            ring.push(ring[0]);
            let Some(sp) = SphericalPolygon::new(&Polygon::new(LineString(ring), vec![]), false) else { return Ok(()) };
            prop_assert_eq!(sp.locate(to_v3(centre.0)), Location::Inside);
            let p = to_v3(coord! {x: px, y: py});
            prop_assert!(!(sp.locate(p) == Location::Inside && sp.locate(scaled(p, -1.0)) == Location::Inside));
        }

        /// Every point of a shape lies in its spherical bounding box.
        #[test]
        fn the_bounding_box_holds_the_arcs(
            ax in -180.0f64..180.0, ay in -85.0f64..85.0, bx in -180.0f64..180.0, by in -85.0f64..85.0, t in 0.0f64..1.0,
        ) {
            let line = line_string![(x: ax, y: ay), (x: bx, y: by)];
            let (a, b) = (to_v3(coord! {x: ax, y: ay}), to_v3(coord! {x: bx, y: by}));
            prop_assume!(dot(a, b) > -0.999);
            let Some(m) = unit(sum(scaled(a, 1.0 - t), scaled(b, t))) else { return Ok(()) };
            let (lng, lat) = (m[1].atan2(m[0]).to_degrees(), m[2].asin().to_degrees());
            let rect = bounding_box(&Geometry::LineString(line), false).unwrap();
            prop_assert!(rect.min().y - 1e-9 <= lat && lat <= rect.max().y + 1e-9, "{:?} {}", rect, lat);
            prop_assert!(rect.min().x - 1e-9 <= lng && lng <= rect.max().x + 1e-9, "{:?} {}", rect, lng);
        }
    }
}
