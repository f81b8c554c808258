package media

import "testing"

func TestThumbSize(t *testing.T) {
	tests := []struct{ w, h, wantW, wantH int }{
		{4000, 3000, 320, 240},
		{3000, 4000, 240, 320},
		{100, 50, 100, 50},
		{50, 4000, 4, 320},
		{4000, 50, 320, 4},
		{1, 100000, 1, 320},
		{100000, 1, 320, 1},
		{320, 320, 320, 320},
		{640, 640, 320, 320},
		{1, 1, 1, 1},
	}
	for _, tt := range tests {
		if w, h := thumbSize(tt.w, tt.h); w != tt.wantW || h != tt.wantH {
			t.Errorf("thumbSize(%d, %d) = %d, %d; want %d, %d", tt.w, tt.h, w, h, tt.wantW, tt.wantH)
		}
	}
}
