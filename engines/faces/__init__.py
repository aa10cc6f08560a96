"""The face API the rest of facestream uses: detect, landmark, align, judge quality, embed."""
