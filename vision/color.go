package vision

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Lab is a colour in CIE L*a*b* (D65 white point).
type Lab struct{ L, A, B float64 }

// RGB is an 8-bit sRGB colour.
type RGB struct{ R, G, B uint8 }

// Hex formats c as #rrggbb.
func (c RGB) Hex() string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

// ParseHex parses #rrggbb or rrggbb.
func ParseHex(s string) (RGB, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "#")
	if len(s) != 6 {
		return RGB{}, fmt.Errorf("colour %q: want #rrggbb", s)
	}
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil {
		return RGB{}, fmt.Errorf("colour %q: want #rrggbb", s)
	}
	return RGB{uint8(v >> 16), uint8(v >> 8), uint8(v)}, nil
}

// Lab converts c to CIE L*a*b* through linear sRGB and XYZ (D65, 2°).
func (c RGB) Lab() Lab {
	lin := func(u uint8) float64 {
		v := float64(u) / 255
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	r, g, b := lin(c.R), lin(c.G), lin(c.B)
	x := (0.4124564*r + 0.3575761*g + 0.1804375*b) / 0.95047
	y := 0.2126729*r + 0.7151522*g + 0.0721750*b
	z := (0.0193339*r + 0.1191920*g + 0.9503041*b) / 1.08883
	f := func(t float64) float64 {
		const e = 216.0 / 24389.0
		const k = 24389.0 / 27.0
		if t > e {
			return math.Cbrt(t)
		}
		return (k*t + 16) / 116
	}
	fx, fy, fz := f(x), f(y), f(z)
	return Lab{L: 116*fy - 16, A: 500 * (fx - fy), B: 200 * (fy - fz)}
}

// DeltaE2000 is the CIEDE2000 colour difference between two Lab colours with
// the parametric factors kL = kC = kH = 1, as specified by CIE 142-2001 and
// checked against the test data of Sharma, Wu and Dalal (2005).
func DeltaE2000(p, q Lab) float64 {
	const pow25to7 = 6103515625.0 // 25^7
	rad := math.Pi / 180
	c1 := math.Hypot(p.A, p.B)
	c2 := math.Hypot(q.A, q.B)
	cbar7 := math.Pow((c1+c2)/2, 7)
	g := 0.5 * (1 - math.Sqrt(cbar7/(cbar7+pow25to7)))
	a1, a2 := (1+g)*p.A, (1+g)*q.A
	c1p, c2p := math.Hypot(a1, p.B), math.Hypot(a2, q.B)
	hue := func(b, a float64) float64 {
		if a == 0 && b == 0 {
			return 0
		}
		h := math.Atan2(b, a) / rad
		if h < 0 {
			h += 360
		}
		return h
	}
	h1, h2 := hue(p.B, a1), hue(q.B, a2)

	dL := q.L - p.L
	dC := c2p - c1p
	var dh float64
	if c1p*c2p != 0 {
		dh = h2 - h1
		switch {
		case dh > 180:
			dh -= 360
		case dh < -180:
			dh += 360
		}
	}
	dH := 2 * math.Sqrt(c1p*c2p) * math.Sin(dh/2*rad)

	lbar := (p.L + q.L) / 2
	cbarp := (c1p + c2p) / 2
	hbar := h1 + h2
	if c1p*c2p != 0 {
		switch {
		// Sharma et al. note 2: hue pairs exactly 180° apart sit on a
		// discontinuity; the tolerance keeps floating-point rounding of an
		// exact 180° on the side the reference data chose.
		case math.Abs(h1-h2) <= 180+1e-9:
			hbar /= 2
		case h1+h2 < 360:
			hbar = (hbar + 360) / 2
		default:
			hbar = (hbar - 360) / 2
		}
	}
	t := 1 - 0.17*math.Cos((hbar-30)*rad) + 0.24*math.Cos(2*hbar*rad) +
		0.32*math.Cos((3*hbar+6)*rad) - 0.20*math.Cos((4*hbar-63)*rad)
	dTheta := 30 * math.Exp(-math.Pow((hbar-275)/25, 2))
	cbarp7 := math.Pow(cbarp, 7)
	rc := 2 * math.Sqrt(cbarp7/(cbarp7+pow25to7))
	l50 := (lbar - 50) * (lbar - 50)
	sl := 1 + 0.015*l50/math.Sqrt(20+l50)
	sc := 1 + 0.045*cbarp
	sh := 1 + 0.015*cbarp*t
	rt := -math.Sin(2*dTheta*rad) * rc

	x, y, z := dL/sl, dC/sc, dH/sh
	return math.Sqrt(x*x + y*y + z*z + rt*y*z)
}

// ColorDistance is DeltaE2000 between two sRGB colours.
func ColorDistance(a, b RGB) float64 { return DeltaE2000(a.Lab(), b.Lab()) }
